//! Enum symbols a writer schema has and the reader schema lacks.
//!
//! Avro's resolution rules fail only the data that carries such a symbol,
//! not the schema: a producer that adds `"bookmark"` to `EngagementKind`
//! still writes readable clicks. apache-avro's compatibility check refuses
//! the whole writer schema instead, so it is asked about a reader whose
//! enums also hold the writer's symbols: if that reads the writer, the only
//! difference is symbols, and the records that carry an unknown one fail to
//! decode on their own (dead-lettered, naming the symbol).

use std::collections::HashMap;

use serde_json::Value;

/// `reader` (schema JSON) with every enum extended by the symbols the
/// enum of the same unqualified name in `writer` has and it lacks; `None`
/// if either is not JSON or nothing would change.
pub(super) fn with_writer_symbols(reader: &str, writer: &str) -> Option<String> {
    let writer: Value = serde_json::from_str(writer).ok()?;
    let mut reader: Value = serde_json::from_str(reader).ok()?;
    let mut symbols = HashMap::new();
    enum_symbols(&writer, &mut symbols);
    extend_enums(&mut reader, &symbols).then(|| reader.to_string())
}

/// The unqualified name of an enum schema object, if it is one.
fn enum_name(map: &serde_json::Map<String, Value>) -> Option<&str> {
    if map.get("type").and_then(Value::as_str) != Some("enum") {
        return None;
    }
    let name = map.get("name").and_then(Value::as_str)?;
    name.rsplit('.').next()
}

/// Collects every enum's symbols in `schema`, by unqualified name.
fn enum_symbols<'v>(schema: &'v Value, into: &mut HashMap<&'v str, Vec<&'v str>>) {
    match schema {
        Value::Object(map) => {
            if let (Some(name), Some(symbols)) =
                (enum_name(map), map.get("symbols").and_then(Value::as_array))
            {
                into.entry(name)
                    .or_default()
                    .extend(symbols.iter().filter_map(Value::as_str));
            }
            map.values().for_each(|v| enum_symbols(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| enum_symbols(v, into)),
        _ => {}
    }
}

/// Appends to each enum in `schema` the symbols `symbols` has for its name
/// and it lacks; whether any was added.
fn extend_enums(schema: &mut Value, symbols: &HashMap<&str, Vec<&str>>) -> bool {
    match schema {
        Value::Object(map) => {
            let mut changed = false;
            if let Some(extra) = enum_name(map).and_then(|name| symbols.get(name)) {
                if let Some(Value::Array(own)) = map.get_mut("symbols") {
                    for symbol in extra {
                        if !own.iter().any(|s| s.as_str() == Some(symbol)) {
                            own.push(Value::from(*symbol));
                            changed = true;
                        }
                    }
                }
            }
            for v in map.values_mut() {
                changed |= extend_enums(v, symbols);
            }
            changed
        }
        Value::Array(items) => {
            let mut changed = false;
            for v in items {
                changed |= extend_enums(v, symbols);
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_writers_symbols_to_the_enum_of_the_same_name_only() {
        let reader = r#"{"type":"record","name":"r","fields":[
            {"name":"kind","type":{"type":"enum","name":"a.Kind","symbols":["x","y"]}},
            {"name":"other","type":["null",{"type":"enum","name":"Other","symbols":["p"]}]}]}"#;
        let writer = r#"{"type":"record","name":"r","fields":[
            {"name":"kind","type":{"type":"enum","name":"b.Kind","symbols":["y","z","x"]}},
            {"name":"more","type":{"type":"enum","name":"Unrelated","symbols":["q"]}}]}"#;
        let relaxed: Value =
            serde_json::from_str(&with_writer_symbols(reader, writer).unwrap()).unwrap();
        assert_eq!(
            relaxed["fields"][0]["type"]["symbols"],
            serde_json::json!(["x", "y", "z"])
        );
        assert_eq!(
            relaxed["fields"][1]["type"][1]["symbols"],
            serde_json::json!(["p"])
        );
        assert_eq!(with_writer_symbols(reader, reader), None, "nothing to add");
        assert_eq!(with_writer_symbols(reader, "{not json"), None);
    }
}
