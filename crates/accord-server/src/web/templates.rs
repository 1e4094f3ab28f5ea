//! Server-rendered pages (minijinja, autoescaped: app and user names are attacker-chosen).

use minijinja::Environment;
use serde::Serialize;
use std::sync::LazyLock;

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    for (name, source) in [
        ("base.html", include_str!("../../templates/base.html")),
        ("signin.html", include_str!("../../templates/signin.html")),
        ("error.html", include_str!("../../templates/error.html")),
        ("form_post.html", include_str!("../../templates/form_post.html")),
        ("signed_out.html", include_str!("../../templates/signed_out.html")),
        ("device_code.html", include_str!("../../templates/device_code.html")),
        ("device_confirm.html", include_str!("../../templates/device_confirm.html")),
        ("device_done.html", include_str!("../../templates/device_done.html")),
        ("app_header.html", include_str!("../../templates/app_header.html")),
        ("permissions.html", include_str!("../../templates/permissions.html")),
        ("consent.html", include_str!("../../templates/consent.html")),
        ("admin_consent.html", include_str!("../../templates/admin_consent.html")),
        ("approval_required.html", include_str!("../../templates/approval_required.html")),
        ("request_sent.html", include_str!("../../templates/request_sent.html")),
        ("need_admin_approval.html", include_str!("../../templates/need_admin_approval.html")),
        ("my_apps.html", include_str!("../../templates/my_apps.html")),
        ("my_apps_entry.html", include_str!("../../templates/my_apps_entry.html")),
    ] {
        env.add_template(name, source).expect("built-in template parses");
    }
    env
});

pub const STYLESHEET: &str = include_str!("../../templates/accord.css");

/// The one inline script we serve (form_post auto-submit), allowed by its CSP hash.
pub const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

pub struct Templates;

impl Templates {
    /// Renders a built-in template; a failure here is a bug in our templates, so it is logged
    /// and replaced by a plain message rather than leaking detail.
    pub fn render<S: Serialize>(name: &str, ctx: S) -> String {
        let rendered = ENV.get_template(name).and_then(|t| t.render(ctx));
        match rendered {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(template = name, error = %e, "template rendering failed");
                "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn every_template_renders_and_escapes() {
        let html = Templates::render(
            "signin.html",
            context! { app_name => "<script>x</script>", action => "/a", flow => "f", csrf => "c", login_hint => "", error => "" },
        );
        assert!(html.contains("&lt;script&gt;x"), "{html}");
        assert!(!html.contains("<script>x"));
        for name in [
            "error.html",
            "form_post.html",
            "signed_out.html",
            "device_code.html",
            "device_confirm.html",
            "device_done.html",
            "consent.html",
            "admin_consent.html",
            "approval_required.html",
            "request_sent.html",
            "need_admin_approval.html",
        ] {
            let ctx = context! {
                app => context! { name => "<i>App</i>", verified => false, home_tenant => "Vendor" },
                permissions => vec![context! { display_name => "<b>Read</b>", description => "d", value => "v", resource => "r", admin_only => true }],
                delegated => Vec::<()>::new(), application => Vec::<()>::new(),
                app_name => "<i>App</i>", approved => false, reason => "<b>Read</b> refused", typed => "<i>App",
            };
            let html = Templates::render(name, ctx);
            assert!(html.contains("<html"), "{name}: {html}");
            assert!(!html.contains("<i>App") && !html.contains("<b>Read"), "{name} escapes names");
        }
    }
}
