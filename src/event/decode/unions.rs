//! Fields a writer schema made a union (optional) where the reader's are not.
//!
//! Avro's resolution rules resolve a writer's union against a reader's
//! non-union type record by record: a record whose branch the reader's type
//! reads is read, one whose branch it cannot read (a null) fails on its own.
//! A producer that makes `content_id` optional (`["null", "string"]`), a
//! change a registry in BACKWARD mode accepts, still writes readable
//! records. apache-avro's compatibility check refuses the whole writer
//! schema instead, so it is asked about a reader whose fields take the
//! writer's unions: if that reads the writer, records with a readable
//! branch decode, and the others fail to decode on their own
//! (dead-lettered as `invalid_avro`).

use serde_json::Value;

/// `reader` (a record schema's JSON) with the type of every field that is
/// not a union replaced by the writer's union, where the writer's record
/// has a field of that name whose type is a union; `None` if either is not
/// a JSON record schema or nothing would change.
pub(super) fn with_writer_unions(reader: &str, writer: &str) -> Option<String> {
    let writer: Value = serde_json::from_str(writer).ok()?;
    let mut reader: Value = serde_json::from_str(reader).ok()?;
    let writer_fields = writer.get("fields")?.as_array()?;
    let mut changed = false;
    for field in reader.get_mut("fields")?.as_array_mut()? {
        let Some(name) = field.get("name").and_then(Value::as_str) else {
            continue;
        };
        let union = writer_fields
            .iter()
            .find(|w| w.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|w| w.get("type"))
            .and_then(Value::as_array);
        let Some(union) = union else { continue };
        let Some(own) = field.as_object_mut() else {
            continue;
        };
        let readable = own
            .get("type")
            .is_some_and(|t| !t.is_array() && union.iter().any(|branch| reads(t, branch)));
        if readable {
            own.insert("type".into(), Value::Array(union.clone()));
            // A default must match a union's first branch; the reader's
            // default (of its own type) no longer would.
            let _dropped = own.remove("default");
            changed = true;
        }
    }
    changed.then(|| reader.to_string())
}

/// Whether a reader's type `reader` reads the writer's `branch`: the same
/// type, or a primitive Avro promotes to it.
fn reads(reader: &Value, branch: &Value) -> bool {
    if reader == branch {
        return true;
    }
    let promotes = |from: &str, to: &str| {
        matches!(
            (from, to),
            ("int", "long" | "float" | "double")
                | ("long", "float" | "double")
                | ("float", "double")
                | ("string", "bytes")
                | ("bytes", "string")
        )
    };
    match (reader.as_str(), branch.as_str()) {
        (Some(to), Some(from)) => promotes(from, to),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_writers_union_for_fields_that_are_not_unions_only() {
        let reader = r#"{"type":"record","name":"r","fields":[
            {"name":"a","type":"string"},
            {"name":"b","type":["null","long"],"default":null},
            {"name":"c","type":"string","default":""}]}"#;
        let writer = r#"{"type":"record","name":"r","fields":[
            {"name":"a","type":["null","string"]},
            {"name":"b","type":["null","long","string"]},
            {"name":"c","type":["string","null"]},
            {"name":"d","type":["null","int"]}]}"#;
        // No branch the reader's type reads: not taken.
        let unreadable = r#"{"type":"record","name":"r","fields":[
            {"name":"a","type":["null","int"]}]}"#;
        assert_eq!(with_writer_unions(reader, unreadable), None);
        let relaxed: Value =
            serde_json::from_str(&with_writer_unions(reader, writer).unwrap()).unwrap();
        assert_eq!(
            relaxed["fields"][0]["type"],
            serde_json::json!(["null", "string"])
        );
        assert_eq!(
            relaxed["fields"][1]["type"],
            serde_json::json!(["null", "long"])
        );
        assert_eq!(
            relaxed["fields"][2]["type"],
            serde_json::json!(["string", "null"])
        );
        assert_eq!(relaxed["fields"][2].get("default"), None);
        assert_eq!(relaxed["fields"].as_array().unwrap().len(), 3);
        assert_eq!(with_writer_unions(reader, reader), None, "nothing to take");
        assert_eq!(with_writer_unions(reader, "{not json"), None);
    }
}
