//! Forms generated from a JSON Schema's top-level `properties` (a case's
//! data, a task's output): enums as choices, numbers and strings as
//! inputs with the schema's limits, yes/no; and the typed values back as
//! the schema's types. The API validates the whole schema again.

use maud::{Markup, html};
use serde_json::{Map, Value, json};

/// One field `prefix.name`.
pub fn input(prefix: &str, name: &str, prop: &Value, required: bool, value: Option<&str>) -> Markup {
    let id = format!("{prefix}-{name}");
    let label = prop["title"].as_str().unwrap_or(name);
    let field = format!("{prefix}.{name}");
    html! {
        label for=(id) {
            (label) @if required { " *" }
            @if let Some(options) = prop["enum"].as_array() {
                select id=(id) name=(field) required[required] {
                    @if !required { option value="" { "—" } }
                    @for o in options {
                        @let o = o.as_str().map_or_else(|| o.to_string(), str::to_owned);
                        option value=(o) selected[value == Some(o.as_str())] { (o) }
                    }
                }
            } @else if matches!(prop["type"].as_str(), Some("number" | "integer")) {
                input id=(id) name=(field) type="number" required[required] value=[value]
                    min=[prop["minimum"].as_f64()] max=[prop["maximum"].as_f64()]
                    step=(if prop["type"] == "integer" { "1" } else { "any" });
            } @else if prop["type"] == "boolean" {
                select id=(id) name=(field) required[required] {
                    option value="" { "—" }
                    option value="true" selected[value == Some("true")] { "yes" }
                    option value="false" selected[value == Some("false")] { "no" }
                }
            } @else {
                input id=(id) name=(field) type="text" required[required] value=[value]
                    minlength=[prop["minLength"].as_u64()] maxlength=[prop["maxLength"].as_u64()]
                    pattern=[prop["pattern"].as_str().map(|p| p.trim_start_matches('^').trim_end_matches('$'))];
            }
        }
    }
}

/// Whether the form has a field for a property: scalars and choices
/// (objects and arrays are kept as they are when a form is sent).
pub fn has_field(prop: &Value) -> bool {
    prop["enum"].is_array() || matches!(prop["type"].as_str(), Some("string" | "number" | "integer" | "boolean"))
}

/// A value as its form field shows it.
pub fn shown(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The typed values of fields `prefix.*` as the schema's types; empty
/// fields are left out.
pub fn values(prefix: &str, schema: &Value, typed: &[(String, String)]) -> Value {
    let mut data = Map::new();
    for (k, v) in typed {
        let Some(name) = k.strip_prefix(prefix).and_then(|k| k.strip_prefix('.')) else {
            continue;
        };
        if v.trim().is_empty() {
            continue;
        }
        let value = match schema["properties"][name]["type"].as_str() {
            Some("integer") => v.trim().parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(v)),
            Some("number") => v.trim().parse::<f64>().map(Value::from).unwrap_or_else(|_| json!(v)),
            Some("boolean") => json!(v == "true"),
            _ => json!(v),
        };
        data.insert(name.to_owned(), value);
    }
    Value::Object(data)
}
