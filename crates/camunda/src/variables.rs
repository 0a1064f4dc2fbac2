//! Camunda's typed variables (`{"name": {"type", "value", "valueInfo"}}`)
//! and its date format, from and to plain JSON.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// A variable Casewire can not hold as JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    #[error("variable '{name}': not JSON: {reason}")]
    NotJson { name: String, reason: String },
    #[error("Unsupported value type '{0}'")]
    Unsupported(String),
}

/// Camunda's date format: `2013-01-23T13:42:42.000+0200`.
pub fn date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

/// A JSON value as a Camunda typed variable: objects and arrays are `Json`
/// with the JSON as a *string*, as Camunda's clients expect.
pub fn typed(value: &Value) -> Value {
    let (kind, value) = match value {
        Value::Null => ("Null", Value::Null),
        Value::Bool(_) => ("Boolean", value.clone()),
        Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => ("Integer", value.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => ("Long", value.clone()),
        Value::Number(_) => ("Double", value.clone()),
        Value::String(_) => ("String", value.clone()),
        Value::Array(_) | Value::Object(_) => ("Json", Value::String(value.to_string())),
    };
    json!({"type": kind, "value": value, "valueInfo": {}})
}

/// The variables of `object`, all or only the names asked for, typed.
pub fn typed_variables(object: &Value, names: Option<&[String]>) -> Value {
    let mut out = Map::new();
    if let Value::Object(vars) = object {
        for (name, value) in vars {
            if names.is_none_or(|n| n.contains(name)) {
                out.insert(name.clone(), typed(value));
            }
        }
    }
    Value::Object(out)
}

/// Typed variables as one plain JSON object. A type that is not JSON (a
/// file) is refused rather than dropped.
pub fn plain_variables(typed: Option<&Value>) -> Result<Value, VariableError> {
    let mut out = Map::new();
    let Some(Value::Object(vars)) = typed else {
        return Ok(Value::Object(out));
    };
    for (name, var) in vars {
        let kind = var["type"].as_str().unwrap_or("").to_ascii_lowercase();
        let value = &var["value"];
        let plain = match kind.as_str() {
            "string" | "integer" | "long" | "short" | "double" | "boolean" | "null" | "date" | "" => value.clone(),
            "json" => match value {
                Value::String(s) => serde_json::from_str(s).map_err(|e| VariableError::NotJson {
                    name: name.clone(),
                    reason: e.to_string(),
                })?,
                other => other.clone(),
            },
            // A serialized object stays in its serialized form, as the
            // JS client leaves it.
            "object" => value.clone(),
            other => return Err(VariableError::Unsupported(other.to_owned())),
        };
        out.insert(name.clone(), plain);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_round_trip_through_camunda_types() {
        let plain = json!({"s": "x", "i": 7, "l": 1_099_511_627_776_i64, "d": 2.5, "b": true, "n": null,
                           "j": {"a": [1]}, "arr": [1, 2]});
        let typed = typed_variables(&plain, None);
        assert_eq!(typed["i"]["type"], "Integer");
        assert_eq!(typed["l"]["type"], "Long");
        assert_eq!(typed["d"]["type"], "Double");
        assert_eq!(
            typed["j"],
            json!({"type": "Json", "value": "{\"a\":[1]}", "valueInfo": {}})
        );
        assert_eq!(plain_variables(Some(&typed)), Ok(plain.clone()));
        let only = typed_variables(&plain, Some(&["s".to_owned()]));
        assert_eq!(only.as_object().map(|o| o.len()), Some(1));
    }

    #[test]
    fn lower_case_types_from_the_js_client_are_read() {
        let vars = json!({"j": {"type": "json", "value": "{\"k\":1}", "valueInfo": {}},
                          "dt": {"type": "date", "value": "1970-01-01T00:00:00.000+0000", "valueInfo": {}}});
        let plain = plain_variables(Some(&vars));
        assert_eq!(plain, Ok(json!({"j": {"k": 1}, "dt": "1970-01-01T00:00:00.000+0000"})));
    }

    #[test]
    fn a_file_variable_is_refused_not_dropped() {
        let typed = json!({"f": {"type": "File", "value": "x"}});
        assert_eq!(
            plain_variables(Some(&typed)),
            Err(VariableError::Unsupported("file".into()))
        );
    }

    #[test]
    fn dates_are_in_camundas_format() {
        let t = DateTime::parse_from_rfc3339("2013-01-23T11:42:42Z").map(|t| t.with_timezone(&Utc));
        assert_eq!(t.map(date).ok().as_deref(), Some("2013-01-23T11:42:42.000+0000"));
    }
}
