//! Server-rendered pages (minijinja, autoescaped: app and user names are attacker-chosen).

use minijinja::Environment;
use serde::Serialize;
use std::sync::LazyLock;

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_filter("count", accord_core::wording::count);
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
    #[test]
    fn the_count_filter_words_plurals() {
        let mut env = minijinja::Environment::new();
        env.add_filter("count", accord_core::wording::count);
        let render = |n: i64| env.render_str("{{ n | count('meeting') }}", minijinja::context! { n }).unwrap();
        assert_eq!((render(1), render(4)), ("1 meeting".to_string(), "4 meetings".to_string()));
    }

    /// Words are never split mid-word to fit (issue 18: "Decemb er", "Administrato r"):
    /// `word-break` breaks anywhere, and `overflow-wrap: anywhere` lets a table column shrink
    /// below its longest word. Only identifiers (`.mono`, `.secret-value`) may break anywhere.
    #[test]
    fn stylesheets_break_only_identifiers_mid_word() {
        let sheets = [
            ("accord.css", STYLESHEET),
            ("admin.css", include_str!("../../templates/admin/admin.css")),
            ("my_apps.css", include_str!("../../templates/my_apps.css")),
        ];
        for (name, css) in sheets {
            for rule in css.split('}') {
                let Some((selector, body)) = rule.split_once('{') else { continue };
                let identifiers = [".mono", ".secret-value", ".details dd"];
                let for_identifiers = identifiers.iter().any(|c| selector.trim().ends_with(c));
                if body.contains("word-break") || body.contains("overflow-wrap: anywhere") {
                    assert!(for_identifiers, "{name}: `{}` breaks words mid-word: {body}", selector.trim());
                }
            }
        }
    }

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
