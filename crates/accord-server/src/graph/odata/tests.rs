use super::*;
use proptest::prelude::*;
use serde_json::json;
use time::macros::datetime;

const ATTENDEE: &[Prop] = &[
    Prop { path: "type", ty: PropType::String },
    Prop { path: "emailAddress/address", ty: PropType::String },
    Prop { path: "emailAddress/name", ty: PropType::String },
];
const PROPS: &[Prop] = &[
    Prop { path: "id", ty: PropType::String },
    Prop { path: "subject", ty: PropType::String },
    Prop { path: "start/dateTime", ty: PropType::DateTime },
    Prop { path: "createdDateTime", ty: PropType::DateTime },
    Prop { path: "isOnlineMeeting", ty: PropType::Bool },
    Prop { path: "size", ty: PropType::Number },
    Prop { path: "categories", ty: PropType::Strings },
    Prop { path: "attendees", ty: PropType::Objects(ATTENDEE) },
];
const SPEC: ResourceSpec = ResourceSpec {
    type_name: "microsoft.graph.event",
    select: &["id", "subject", "start", "attendees", "isOnlineMeeting"],
    filter: PROPS,
    orderby: &["subject", "start/dateTime", "size"],
    default_top: 10,
    max_top: 999,
    skiptoken_paging: false,
};

fn item(subject: &str, start: &str, online: bool, size: i64, attendees: &[&str]) -> Value {
    json!({
        "id": subject.to_lowercase(),
        "subject": subject,
        "start": {"dateTime": start, "timeZone": "UTC"},
        "createdDateTime": "2026-01-01T00:00:00.0000000Z",
        "isOnlineMeeting": online,
        "size": size,
        "categories": [],
        "attendees": attendees.iter().map(|a| json!({"type": "required", "emailAddress": {"address": a, "name": a}})).collect::<Vec<_>>(),
    })
}

fn items() -> Vec<Value> {
    vec![
        item("Standup", "2026-12-01T09:00:00.0000000", true, 3, &["bob@contoso.test"]),
        item("Review", "2026-12-01T14:00:00.0000000", false, 1, &["carol@contoso.test", "bob@contoso.test"]),
        item("Planning", "2026-12-02T10:30:00.0000000", true, 2, &[]),
        item("O'Brien 1:1", "2026-12-03T08:00:00.0000000", false, 5, &["dan@fabrikam.test"]),
    ]
}

fn run(filter: &str) -> Vec<String> {
    let f = parse_filter(filter, &SPEC).unwrap_or_else(|e| panic!("{filter}: {}", e.message));
    items().iter().filter(|v| f.matches(v)).map(|v| v["subject"].as_str().unwrap().to_string()).collect()
}

fn error(filter: &str) -> String {
    parse_filter(filter, &SPEC).expect_err(filter).message
}

#[test]
fn comparisons_and_logic() {
    assert_eq!(run("subject eq 'Review'"), ["Review"]);
    assert_eq!(run("subject eq 'review'"), ["Review"], "string comparison ignores case");
    assert_eq!(run("subject ne 'Review'"), ["Standup", "Planning", "O'Brien 1:1"]);
    assert_eq!(run("subject eq 'O''Brien 1:1'"), ["O'Brien 1:1"]);
    assert_eq!(run("size gt 2 and size le 5"), ["Standup", "O'Brien 1:1"]);
    assert_eq!(run("size lt 2 or size ge 5"), ["Review", "O'Brien 1:1"]);
    assert_eq!(run("not (size lt 2 or size ge 5)"), ["Standup", "Planning"]);
    assert_eq!(run("isOnlineMeeting"), ["Standup", "Planning"]);
    assert_eq!(run("isOnlineMeeting eq false and not startswith(subject,'o')"), ["Review"]);
    assert_eq!(run("(((subject eq 'Review')))"), ["Review"]);
    assert_eq!(run("size eq -1 or size eq 1.0"), ["Review"]);
    assert_eq!(run("subject ne null"), ["Standup", "Review", "Planning", "O'Brien 1:1"]);
    assert_eq!(run("true"), ["Standup", "Review", "Planning", "O'Brien 1:1"]);
    // `and` binds tighter than `or`.
    assert_eq!(run("subject eq 'Standup' or subject eq 'Review' and size eq 3"), ["Standup"]);
    assert_eq!(run("SUBJECT EQ 'Review'"), ["Review"]);
}

#[test]
fn string_functions() {
    assert_eq!(run("startswith(subject,'Pla')"), ["Planning"]);
    assert_eq!(run("endswith(subject, 'UP')"), ["Standup"]);
    assert_eq!(run("contains(subject,'e')"), ["Review", "O'Brien 1:1"]);
    assert_eq!(run("startswith('abc', 'a')").len(), 4);
}

#[test]
fn date_times() {
    assert_eq!(run("start/dateTime ge '2026-12-01T14:00:00'"), ["Review", "Planning", "O'Brien 1:1"]);
    assert_eq!(run("start/dateTime le '2026-12-01T14:00:00Z'"), ["Standup", "Review"]);
    assert_eq!(run("start/dateTime gt 2026-12-02T00:00:00Z"), ["Planning", "O'Brien 1:1"]);
    assert_eq!(run("start/dateTime le '2026-12-01T15:00:00+01:00'"), ["Standup", "Review"]);
    assert_eq!(run("start/dateTime eq '2026-12-02T10:30:00.0000000'"), ["Planning"]);
    assert_eq!(run("start/dateTime ge '2026-12-02' and start/dateTime lt '2026-12-03'"), ["Planning"]);
    assert_eq!(run("createdDateTime lt 2026-06-01T00:00:00Z").len(), 4);
    assert!(error("start/dateTime ge 'tomorrow'").contains("not a valid date-time for 'start/dateTime'"));
    assert!(error("start/dateTime ge 2026-13-01T00:00:00Z").contains("not a valid date-time"));
}

#[test]
fn lambdas() {
    assert_eq!(run("attendees/any(a: a/emailAddress/address eq 'bob@contoso.test')"), ["Standup", "Review"]);
    assert_eq!(run("attendees/any()"), ["Standup", "Review", "O'Brien 1:1"]);
    assert_eq!(
        run("attendees/all(a: endswith(a/emailAddress/address, '@contoso.test'))"),
        ["Standup", "Review", "Planning"]
    );
    assert_eq!(run("not attendees/any()"), ["Planning"]);
    assert!(error("attendees/any(a: a/nope eq 'x')").contains("'nope'"));
    assert!(error("attendees/any(a: b/type eq 'x')").contains("'b/type'"));
    assert!(error("subject/any(a: a/x eq 1)").contains("applies to collections"));
    assert!(error("attendees eq 'x'").contains("any() or all()"));
}

#[test]
fn clear_errors() {
    assert!(error("nope eq 'x'").contains("'nope'"), "{}", error("nope eq 'x'"));
    assert!(error("subject eq").contains("ends where a value was expected"));
    assert!(error("subject eq 'x").contains("not closed"));
    assert!(error("subject eq 5").contains("incompatible types"));
    assert!(error("subject eq 5").contains("Edm.String"));
    assert!(error("size gt null").contains("null"));
    assert!(error("subject").contains("must be a condition"));
    assert!(error("(subject eq 'x'").contains("expected ')'"));
    assert!(error("subject eq 'x')").contains("unexpected ')'"));
    assert!(error("subject eq 'x' and").contains("ends where"));
    assert!(error("subject # 'x'").contains("unexpected character '#'"));
    assert!(error("startswith(subject, 5)").contains("two strings"));
    assert!(error("size and subject eq 'x'").contains("conditions"));
    assert!(error(&"(".repeat(100)).contains("nested"));
    assert!(error(&format!("subject eq '{}'", "x".repeat(5000))).contains("longer than"));
    assert!(error("subject eq 'x' eq 'y'").contains("unexpected"));
    assert!(error("").contains("ends where"));
}

fn opts(q: &str) -> Result<QueryOptions, String> {
    QueryOptions::parse(Some(q), &SPEC).map_err(|e| e.message)
}

#[test]
fn query_options() {
    let o = opts("$select=Subject,start&$top=2&$orderby=size desc&$count=true").unwrap();
    assert_eq!(o.select, Some(vec!["subject", "start"]));
    assert_eq!(o.top, 2);
    assert_eq!(o.orderby, vec![OrderBy { path: "size", ty: PropType::Number, direction: Direction::Desc }]);
    assert!(o.count);
    assert_eq!(opts("").unwrap().top, 10);
    assert_eq!(opts("startDateTime=x&foo=bar").unwrap().top, 10, "endpoint parameters are not OData options");

    assert!(opts("$select=nope").unwrap_err().contains("Could not find a property named 'nope'"));
    assert!(opts("$top=0").unwrap_err().contains("between 1 and 999"));
    assert!(opts("$top=1000").unwrap_err().contains("between 1 and 999"));
    assert!(opts("$top=abc").unwrap_err().contains("'abc'"));
    assert!(opts("$skip=-1").unwrap_err().contains("$skip"));
    assert!(opts("$orderby=body").unwrap_err().contains("'body' cannot be used in '$orderby'"));
    assert!(opts("$orderby=subject sideways").unwrap_err().contains("'sideways'"));
    assert!(opts("$expand=attachments").unwrap_err().contains("'$expand' is not supported"));
    assert!(opts("$foo=1").unwrap_err().contains("'$foo'"));
    assert!(opts("$top=1&$top=2").unwrap_err().contains("more than once"));
    assert!(opts("$count=maybe").unwrap_err().contains("$count"));
    assert!(opts("$skiptoken=garbage!").unwrap_err().contains("$skiptoken"));
    assert!(opts("$filter=subject eq").unwrap_err().starts_with("Invalid filter clause"));
}

#[test]
fn ordering_and_paging() {
    let o = opts("$orderby=subject&$top=3").unwrap();
    let page = o.apply(items());
    let subjects: Vec<_> = page.items.iter().map(|v| v["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["O'Brien 1:1", "Planning", "Review"]);
    assert_eq!((page.total, page.next_skip), (4, Some(3)));
    let link = o.next_link("https://localhost:8443", "/v1.0/me/events", 3);
    assert_eq!(link, "https://localhost:8443/v1.0/me/events?$orderby=subject&$top=3&$skip=3");
    let o2 = opts("$orderby=subject&$top=3&$skip=3").unwrap();
    let page2 = o2.apply(items());
    assert_eq!(page2.items.len(), 1);
    assert_eq!(page2.next_skip, None);

    let desc = opts("$orderby=start/dateTime desc").unwrap().apply(items());
    assert_eq!(desc.items[0]["subject"], "O'Brien 1:1");
    let multi = opts("$orderby=isOnlineMeeting desc, size");
    assert!(multi.is_err(), "isOnlineMeeting is not sortable in this spec");

    // Skip tokens round-trip, and filter values with spaces and quotes survive the link.
    let spec = ResourceSpec { skiptoken_paging: true, ..SPEC };
    let o = QueryOptions::parse(Some("$filter=subject%20eq%20'a%2Bb'&$top=1"), &spec).unwrap();
    let link = o.next_link("https://h", "/v1.0/x", 7);
    let query = link.split_once('?').unwrap().1;
    let again = QueryOptions::parse(Some(query), &spec).unwrap();
    assert_eq!(again.skip, 7);
    assert_eq!(again.filter, o.filter);
    assert!(link.contains("$filter=subject%20eq%20'a%2Bb'"), "{link}");
}

#[test]
fn select_projection_and_context() {
    let o = opts("$select=subject").unwrap();
    let v = o.project(json!({"@odata.etag": "e", "id": "1", "subject": "s", "body": "b"}));
    assert_eq!(v, json!({"@odata.etag": "e", "id": "1", "subject": "s"}));
    assert_eq!(o.context("https://h", "users('u')/events"), "https://h/v1.0/$metadata#users('u')/events(subject)");
    assert_eq!(opts("").unwrap().context("https://h", "users/$entity"), "https://h/v1.0/$metadata#users/$entity");
    assert_eq!(opts("$select=*").unwrap().select.unwrap().len(), SPEC.select.len());
}

#[test]
fn datetime_parsing_and_formatting() {
    assert_eq!(parse_datetime("2026-12-01T09:00:00Z"), Some(datetime!(2026-12-01 09:00 UTC)));
    assert_eq!(parse_datetime("2026-12-01T09:00:00"), Some(datetime!(2026-12-01 09:00 UTC)));
    assert_eq!(parse_datetime("2026-12-01T09:00"), Some(datetime!(2026-12-01 09:00 UTC)));
    assert_eq!(parse_datetime("2026-12-01"), Some(datetime!(2026-12-01 00:00 UTC)));
    assert_eq!(parse_datetime("2026-12-01T09:00:00.1234567"), Some(datetime!(2026-12-01 09:00:00.1234567 UTC)));
    assert_eq!(parse_datetime("2026-12-01T10:00:00+01:00"), Some(datetime!(2026-12-01 09:00 UTC)));
    assert_eq!(parse_datetime("2026-12-01T10:00:00 01:00"), Some(datetime!(2026-12-01 09:00 UTC)));
    assert_eq!(parse_datetime("2026-12-01T01:00:00-0800"), Some(datetime!(2026-12-01 09:00 UTC)));
    for bad in [
        "",
        "2026",
        "2026-12-01T",
        "2026-12-01T9:00",
        "2026-02-30T00:00:00",
        "2026-12-01T24:00:00",
        "2026-12-01T09:00:00X",
        "2026-12-01T09:00:00.",
        "2026-12-01T09:00:00+25:00",
        "２０２６-12-01",
    ] {
        assert_eq!(parse_datetime(bad), None, "{bad}");
    }
    assert_eq!(format_utc(datetime!(2026-12-01 10:00:00.5 +01:00)), "2026-12-01T09:00:00.5000000Z");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_filters_never_panic(text in "\\PC{0,120}") {
        if let Ok(f) = parse_filter(&text, &SPEC) {
            for v in items() {
                let _ = f.matches(&v);
            }
        }
    }

    #[test]
    fn filter_shaped_input_never_panics(
        parts in proptest::collection::vec(prop_oneof![
            Just("subject"), Just("start/dateTime"), Just("attendees"), Just("size"), Just("isOnlineMeeting"),
            Just("a/emailAddress/address"), Just("/any("), Just("/all("), Just("a:"), Just("eq"), Just("ne"),
            Just("gt"), Just("le"), Just("and"), Just("or"), Just("not"), Just("("), Just(")"), Just(","),
            Just("'x'"), Just("'2026-12-01T09:00:00'"), Just("2026-12-01T09:00:00Z"), Just("3"), Just("-1.5"),
            Just("true"), Just("null"), Just("startswith("), Just("contains("), Just("''''"), Just("'"),
        ], 0..24)
    ) {
        let text = parts.join(" ");
        if let Ok(f) = parse_filter(&text, &SPEC) {
            for v in items() {
                let _ = f.matches(&v);
            }
        }
    }

    #[test]
    fn arbitrary_query_strings_never_panic(q in "[$a-zA-Z=&%0-9 ',()/:.+-]{0,80}") {
        if let Ok(o) = QueryOptions::parse(Some(&q), &SPEC) {
            let page = o.apply(items());
            if let Some(skip) = page.next_skip {
                let _ = o.next_link("https://h", "/v1.0/me/events", skip);
            }
        }
    }

    #[test]
    fn datetime_parser_never_panics(s in "\\PC{0,40}") {
        let _ = parse_datetime(&s);
    }
}
