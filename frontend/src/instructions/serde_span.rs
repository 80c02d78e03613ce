//! Serializing [`Span`]s (which live in a module without serde) as `[start, end]`.

use serde::Serializer;
use serde::ser::SerializeTuple;

use crate::span::Span;

/// Serializes a span as `[start, end]`.
pub(crate) fn span<S: Serializer>(span: &Span, serializer: S) -> Result<S::Ok, S::Error> {
    let mut tuple = serializer.serialize_tuple(2)?;
    tuple.serialize_element(&span.start)?;
    tuple.serialize_element(&span.end)?;
    tuple.end()
}

/// Serializes an optional span as `[start, end]` or `null`.
pub(crate) fn option_span<S: Serializer>(
    value: &Option<Span>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(s) => span(s, serializer),
        None => serializer.serialize_none(),
    }
}
