//! Errors as gRPC statuses: the code a client can act on, and a message
//! written for people (never a Rust debug dump).

use aduana_engine::EngineError;
use arrow_flight::error::FlightError;
use datafusion::error::DataFusionError;
use tonic::Status;

/// The status for a failure of the engine: refusals are PERMISSION_DENIED,
/// bad SQL INVALID_ARGUMENT, unknown tables and columns NOT_FOUND.
pub fn engine_status(error: EngineError) -> Status {
    match error {
        EngineError::Refused { reason, .. } => Status::permission_denied(reason),
        EngineError::Statement { source, .. } | EngineError::DataFusion(source) => {
            datafusion_status(&source)
        }
        EngineError::InvalidOption(message)
        | EngineError::TooComplex(message)
        | EngineError::Syntax(message) => Status::invalid_argument(message),
        other => Status::internal(other.to_string()),
    }
}

/// The status for a DataFusion error, from the root cause.
pub fn datafusion_status(error: &DataFusionError) -> Status {
    let root = error.find_root();
    match root {
        DataFusionError::SQL(parse, _) => {
            Status::invalid_argument(aduana_engine::mistakes::syntax_message(parse))
        }
        DataFusionError::Plan(message) if is_not_found(message) => {
            Status::not_found(root.to_string())
        }
        DataFusionError::SchemaError(..) if is_not_found(&root.to_string()) => {
            Status::not_found(root.to_string())
        }
        DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => {
            Status::invalid_argument(root.to_string())
        }
        DataFusionError::ResourcesExhausted(_) => Status::resource_exhausted(root.to_string()),
        DataFusionError::NotImplemented(_) => Status::unimplemented(root.to_string()),
        DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) => {
            Status::unavailable(root.to_string())
        }
        // Errors raised while running: casts, bad arguments to functions
        // (a malformed HS code), division by zero.
        DataFusionError::Execution(_) | DataFusionError::ArrowError(..) => {
            Status::invalid_argument(root.to_string())
        }
        DataFusionError::External(inner) => match inner.downcast_ref::<Status>() {
            Some(status) => status.clone(),
            None => Status::internal(root.to_string()),
        },
        _ => Status::internal(root.to_string()),
    }
}

/// The status carried by an error of the Flight encoder.
pub fn flight_status(error: FlightError) -> Status {
    match error {
        FlightError::Tonic(status) => *status,
        FlightError::ExternalError(inner) => match inner.downcast::<DataFusionError>() {
            Ok(df) => datafusion_status(&df),
            Err(other) => Status::internal(other.to_string()),
        },
        other => Status::internal(other.to_string()),
    }
}

/// A DataFusion error as the encoder carries it.
pub fn to_flight_error(error: DataFusionError) -> FlightError {
    FlightError::Tonic(Box::new(datafusion_status(&error)))
}

fn is_not_found(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("not found") || lower.contains("no field named")
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::parser::ParserError;
    use tonic::Code;

    #[test]
    fn codes() {
        let parse = DataFusionError::SQL(
            Box::new(ParserError::ParserError(
                "Expected: an expression, found: FROM".into(),
            )),
            None,
        );
        let status = datafusion_status(&parse);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "SQL syntax error: Expected: an expression, found: FROM"
        );
        let missing = DataFusionError::Plan("table 'aduana.public.nope' not found".into());
        assert_eq!(datafusion_status(&missing).code(), Code::NotFound);
        let wrapped = DataFusionError::Context(
            "while planning".into(),
            Box::new(DataFusionError::ResourcesExhausted("memory".into())),
        );
        assert_eq!(datafusion_status(&wrapped).code(), Code::ResourceExhausted);
        let refused = EngineError::Refused {
            statement: "COPY".into(),
            reason: "refused: read-only".into(),
        };
        let status = engine_status(refused);
        assert_eq!(status.code(), Code::PermissionDenied);
        assert!(!status.message().contains("Refused {"));
    }
}
