//! The decoder's list of fields, the published JSON Schema and the `events` columns say the
//! same thing: a field added in one of them and not the others fails here.

use deploylens_model::schema::events_schema;
use deploylens_model::{FIELDS, Presence};

fn schema_json() -> serde_json::Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/deployment-event.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_decoder_fields_are_the_schema_properties() {
    let schema = schema_json();
    let mut properties: Vec<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    properties.sort();
    let mut fields: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
    fields.sort();
    assert_eq!(fields, properties);
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    required.sort();
    // The schema describes the current format: both Required and Current fields are required.
    let mut ours: Vec<&str> = FIELDS
        .iter()
        .filter(|(_, p)| *p != Presence::Optional)
        .map(|(f, _)| *f)
        .collect();
    ours.sort();
    assert_eq!(ours, required);
}

#[test]
fn every_field_is_a_column() {
    let columns = events_schema();
    for (f, _) in FIELDS {
        assert!(columns.field_with_name(f).is_ok(), "{f} has no column");
    }
}
