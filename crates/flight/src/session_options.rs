//! Flight session options (`SetSessionOptions`, `GetSessionOptions`,
//! `CloseSession`): the JDBC driver sends its `catalog=` and `schema=` URL
//! options this way. arrow-flight 59 does not generate these messages, so
//! they are declared here as in `Flight.proto`. A session is named by the
//! `arrow_flight_session_id` cookie the server sets.

use std::collections::HashMap;

/// One option value (`SessionOptionValue` in Flight.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionOptionValue {
    #[prost(oneof = "OptionValue", tags = "1, 2, 3, 4, 5")]
    pub option_value: Option<OptionValue>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum OptionValue {
    #[prost(string, tag = "1")]
    StringValue(String),
    #[prost(bool, tag = "2")]
    BoolValue(bool),
    #[prost(sfixed64, tag = "3")]
    Int64Value(i64),
    #[prost(double, tag = "4")]
    DoubleValue(f64),
    #[prost(message, tag = "5")]
    StringListValue(StringListValue),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StringListValue {
    #[prost(string, repeated, tag = "1")]
    pub values: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SetSessionOptionsRequest {
    #[prost(map = "string, message", tag = "1")]
    pub session_options: HashMap<String, SessionOptionValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SetSessionOptionsResult {
    #[prost(map = "string, message", tag = "1")]
    pub errors: HashMap<String, SetSessionOptionsError>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SetSessionOptionsError {
    #[prost(enumeration = "SetSessionOptionsErrorValue", tag = "1")]
    pub value: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum SetSessionOptionsErrorValue {
    Unspecified = 0,
    InvalidName = 1,
    InvalidValue = 2,
    Error = 3,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetSessionOptionsResult {
    #[prost(map = "string, message", tag = "1")]
    pub session_options: HashMap<String, SessionOptionValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CloseSessionResult {
    #[prost(enumeration = "CloseSessionStatus", tag = "1")]
    pub status: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum CloseSessionStatus {
    Unspecified = 0,
    Closed = 1,
    Closing = 2,
    NotClosable = 3,
}

pub const SESSION_COOKIE: &str = "arrow_flight_session_id";

/// What a client session may set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// The schema unqualified table names resolve in (`public` unless set).
    pub schema: Option<String>,
    /// Send strings as `Utf8View` (for clients that read view types);
    /// plain `Utf8` otherwise.
    pub string_view: bool,
}

impl ClientOptions {
    pub fn as_values(&self, catalog: &str) -> HashMap<String, SessionOptionValue> {
        let mut values = HashMap::new();
        let string = |s: &str| SessionOptionValue {
            option_value: Some(OptionValue::StringValue(s.to_string())),
        };
        values.insert("catalog".to_string(), string(catalog));
        values.insert(
            "schema".to_string(),
            string(
                self.schema
                    .as_deref()
                    .unwrap_or(aduana_engine::DEFAULT_SCHEMA),
            ),
        );
        values.insert(
            "aduana.string_view".to_string(),
            SessionOptionValue {
                option_value: Some(OptionValue::BoolValue(self.string_view)),
            },
        );
        values
    }
}

/// The session id in the request's `cookie` headers, if any.
pub fn session_id(headers: &tonic::metadata::MetadataMap) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn cookie_and_wire_format() {
        let mut headers = tonic::metadata::MetadataMap::new();
        headers.insert(
            "cookie",
            "a=1; arrow_flight_session_id=abc123".parse().unwrap(),
        );
        assert_eq!(session_id(&headers).as_deref(), Some("abc123"));
        let mut request = SetSessionOptionsRequest::default();
        request.session_options.insert(
            "catalog".into(),
            SessionOptionValue {
                option_value: Some(OptionValue::StringValue("aduana".into())),
            },
        );
        let bytes = request.encode_to_vec();
        assert_eq!(
            SetSessionOptionsRequest::decode(bytes.as_slice()).unwrap(),
            request
        );
    }
}
