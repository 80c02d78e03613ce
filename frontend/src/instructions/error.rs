//! Errors of the typed-instruction layer.
//!
//! Every variant carries the [`Span`] of the offending text (a flag, an argument, or the whole
//! instruction when nothing narrower exists), so the binary can point at it. Messages follow
//! BuildKit's wording, first letter lowercased.

use crate::span::Span;

use super::suggest::hint;

/// Why a `--chmod` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChmodError {
    /// The value is empty.
    #[error("empty mode")]
    Empty,
    /// An octal mode above `7777`.
    #[error("octal mode out of range")]
    OctalOutOfRange,
    /// A symbolic clause with no `+`, `-` or `=` operator.
    #[error("clause {clause:?} has no operator (+, - or =)")]
    MissingOperator {
        /// The clause.
        clause: String,
    },
    /// A character that is not valid at its place in a symbolic clause.
    #[error("unexpected {found:?} in clause {clause:?}")]
    UnexpectedChar {
        /// The clause.
        clause: String,
        /// The character.
        found: char,
    },
}

/// Why a `--mount` value was rejected. Wording follows BuildKit's `parseMount`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// The value is not a valid CSV line.
    #[error("failed to parse csv mounts: {reason}")]
    Csv {
        /// What is wrong.
        reason: String,
    },
    /// A field without `=` that is not a boolean shorthand.
    #[error("invalid field '{field}' must be a key=value pair")]
    NotKeyValue {
        /// The field.
        field: String,
    },
    /// An unknown key.
    #[error("unexpected key '{key}' in '{field}'{}", hint(suggestion))]
    UnknownKey {
        /// The key, lowercased.
        key: String,
        /// The whole field.
        field: String,
        /// The closest known key, if any is close.
        suggestion: Option<String>,
    },
    /// A key that exists but not for this mount type.
    #[error("unexpected key '{key}' for mount type '{mount_type}'")]
    KeyNotForType {
        /// The key.
        key: String,
        /// The mount type.
        mount_type: String,
    },
    /// `type=` names no known mount type.
    #[error("unsupported mount type {value:?}{}", hint(suggestion))]
    UnsupportedType {
        /// The value.
        value: String,
        /// The closest mount type, if any is close.
        suggestion: Option<String>,
    },
    /// `sharing=` is not `shared`, `private` or `locked`.
    #[error("unsupported sharing value {value:?}")]
    UnsupportedSharing {
        /// The value.
        value: String,
    },
    /// A value that does not parse for its key (`ro=maybe`, `uid=x`, `mode=9`).
    #[error("invalid value {value:?} for {key}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// `mode`, `uid` or `gid` on a mount type that has no files of its own.
    #[error("{key} not allowed for {mount_type:?} type mounts")]
    FileInfoNotAllowed {
        /// The key.
        key: String,
        /// The mount type.
        mount_type: String,
    },
    /// `sharing=` on a mount that is not a cache.
    #[error("invalid cache sharing set for {mount_type} mount")]
    SharingNotCache {
        /// The mount type.
        mount_type: String,
    },
    /// `from=` contains a variable; stage dependencies must be known before expansion.
    #[error("'from' doesn't support variable expansion, define alias stage instead")]
    FromVariable,
    /// A secret mount with `from=`.
    #[error("secret mount should not have a from")]
    SecretFrom,
    /// A secret mount with neither source, target nor id.
    #[error("invalid secret mount. one of source, target required")]
    SecretMissingTarget,
    /// A secret mount with both `source` and `id`.
    #[error("both source and id can't be set")]
    SecretSourceAndId,
}

/// Why an EXPOSE port specification was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// No container port.
    #[error("no port specified")]
    Empty,
    /// Not a number between 0 and 65535, or a malformed range.
    #[error("invalid containerPort: {value}")]
    InvalidNumber {
        /// The offending part.
        value: String,
    },
    /// A range whose end is below its start.
    #[error("invalid range: {start} is greater than {end}")]
    InvertedRange {
        /// Range start.
        start: u16,
        /// Range end.
        end: u16,
    },
    /// A protocol other than tcp, udp or sctp.
    #[error("invalid proto: {value}")]
    InvalidProtocol {
        /// The protocol.
        value: String,
    },
    /// The IP of an `ip:host:container` mapping is not an IP address.
    #[error("invalid IP address: {value}")]
    InvalidIp {
        /// The address part.
        value: String,
    },
    /// The host part of a mapping is not a port or range.
    #[error("invalid hostPort: {value}")]
    InvalidHostPort {
        /// The host part.
        value: String,
    },
    /// Host and container ranges of different lengths.
    #[error("invalid ranges specified for container and host Ports: {container} and {host}")]
    RangeMismatch {
        /// The container range.
        container: String,
        /// The host range.
        host: String,
    },
}

/// An error turning the parse tree into typed instructions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The keyword names no Dockerfile instruction.
    #[error("unknown instruction: {keyword}{}", hint(suggestion))]
    UnknownInstruction {
        /// The keyword as written.
        keyword: String,
        /// The closest instruction name, if any is close.
        suggestion: Option<String>,
        /// The keyword.
        span: Span,
    },
    /// FROM where a single command was expected (an ONBUILD trigger).
    #[error("{keyword} is not a command type")]
    NotACommand {
        /// The keyword as written.
        keyword: String,
        /// The instruction.
        span: Span,
    },
    /// An instruction other than ARG before the first FROM.
    #[error("no build stage in current context")]
    NoBuildStage {
        /// The keyword as written.
        keyword: String,
        /// The instruction.
        span: Span,
    },
    /// A flag the instruction does not accept.
    #[error("unknown flag: {name}{}", hint(suggestion))]
    UnknownFlag {
        /// The flag name without dashes.
        name: String,
        /// The closest accepted flag, if any is close.
        suggestion: Option<String>,
        /// The flag.
        span: Span,
    },
    /// A non-repeatable flag given twice.
    #[error("duplicate flag specified: {name}")]
    DuplicateFlag {
        /// The flag name.
        name: String,
        /// The second occurrence.
        span: Span,
    },
    /// A value flag written without `=value`, or a boolean flag written as `--flag=`.
    #[error("missing a value on flag: {name}")]
    MissingFlagValue {
        /// The flag name.
        name: String,
        /// The flag.
        span: Span,
    },
    /// A boolean flag whose value is not `true` or `false`.
    #[error("expecting boolean value for flag {name}, not: {value}")]
    InvalidBoolFlag {
        /// The flag name.
        name: String,
        /// The value.
        value: String,
        /// The flag.
        span: Span,
    },
    /// An instruction given no arguments.
    #[error("{instruction} requires at least one argument")]
    AtLeastOneArgument {
        /// The instruction, uppercase.
        instruction: &'static str,
        /// The instruction.
        span: Span,
    },
    /// An instruction given other than exactly one argument.
    #[error("{instruction} requires exactly one argument")]
    ExactlyOneArgument {
        /// The instruction, uppercase.
        instruction: &'static str,
        /// The instruction.
        span: Span,
    },
    /// COPY or ADD with a single argument.
    #[error(
        "{instruction} requires at least two arguments, but only one was provided. Destination could not be determined"
    )]
    NoDestination {
        /// The instruction, uppercase.
        instruction: &'static str,
        /// The instruction.
        span: Span,
    },
    /// COPY or ADD whose destination is a heredoc.
    #[error("{instruction} cannot accept a heredoc as a destination")]
    HeredocDestination {
        /// The instruction, uppercase.
        instruction: &'static str,
        /// The destination argument.
        span: Span,
    },
    /// An ENV, LABEL or ARG entry with an empty name.
    #[error("{instruction} names can not be blank")]
    BlankName {
        /// The instruction, uppercase.
        instruction: &'static str,
        /// The entry.
        span: Span,
    },
    /// Key/value arguments that do not come in complete entries.
    #[error("bad input to {instruction}, too many arguments")]
    TooManyArguments {
        /// The instruction, uppercase.
        instruction: &'static str,
        /// The instruction.
        span: Span,
    },
    /// SHELL in shell form.
    #[error("{instruction} requires the arguments to be in JSON form")]
    NotJson {
        /// The instruction, uppercase.
        instruction: &'static str,
        /// The instruction.
        span: Span,
    },
    /// FROM with a number of arguments other than one, or three with `AS`.
    #[error("FROM requires either one or three arguments")]
    FromArguments {
        /// The instruction.
        span: Span,
    },
    /// A stage name that does not match `^[a-z][a-z0-9-_.]*$` (after lowercasing).
    #[error(
        "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
    )]
    InvalidStageName {
        /// The name as written.
        name: String,
        /// The name.
        span: Span,
    },
    /// ONBUILD with no trigger.
    #[error("ONBUILD requires at least one argument")]
    OnbuildEmpty {
        /// The instruction.
        span: Span,
    },
    /// `ONBUILD ONBUILD`.
    #[error("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain {
        /// The inner keyword.
        span: Span,
    },
    /// `ONBUILD FROM` or `ONBUILD MAINTAINER`.
    #[error("{trigger} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger {
        /// The trigger keyword, uppercase.
        trigger: String,
        /// The inner keyword.
        span: Span,
    },
    /// `HEALTHCHECK NONE` followed by more words.
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArgs {
        /// The instruction.
        span: Span,
    },
    /// `HEALTHCHECK CMD` with nothing after it.
    #[error("missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand {
        /// The instruction.
        span: Span,
    },
    /// A HEALTHCHECK type other than CMD or NONE.
    #[error("unknown type {kind:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType {
        /// The type, uppercase.
        kind: String,
        /// The type argument.
        span: Span,
    },
    /// A HEALTHCHECK duration flag that is not a Go duration.
    #[error("invalid duration {value:?} for --{flag}")]
    InvalidDuration {
        /// The flag name.
        flag: &'static str,
        /// The value.
        value: String,
        /// The flag.
        span: Span,
    },
    /// A HEALTHCHECK duration between 0 and 1ms, or negative.
    #[error("interval {flag:?} cannot be less than 1ms")]
    DurationTooShort {
        /// The flag name.
        flag: &'static str,
        /// The flag.
        span: Span,
    },
    /// `--retries` that is not a 32-bit integer.
    #[error("invalid value {value:?} for --retries")]
    InvalidRetries {
        /// The value.
        value: String,
        /// The flag.
        span: Span,
    },
    /// A negative `--retries`.
    #[error("--retries cannot be negative ({value})")]
    NegativeRetries {
        /// The value.
        value: i64,
        /// The flag.
        span: Span,
    },
    /// An empty VOLUME entry.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume {
        /// The entry.
        span: Span,
    },
    /// A bad `--mount`.
    #[error("{kind}")]
    Mount {
        /// What is wrong.
        kind: MountError,
        /// The flag.
        span: Span,
    },
    /// `--network` other than default, none or host.
    #[error("unsupported network mode {value:?}")]
    Network {
        /// The value.
        value: String,
        /// The flag.
        span: Span,
    },
    /// `--security` other than sandbox or insecure.
    #[error("unsupported security mode {value:?}")]
    Security {
        /// The value.
        value: String,
        /// The flag.
        span: Span,
    },
    /// A bad `--chmod`.
    #[error("invalid chmod parameter {value:?}: {kind}")]
    Chmod {
        /// The value.
        value: String,
        /// What is wrong.
        kind: ChmodError,
        /// The flag.
        span: Span,
    },
    /// A bad EXPOSE port (checked after expansion).
    #[error("invalid port specification {value:?}: {kind}")]
    Port {
        /// The specification.
        value: String,
        /// What is wrong.
        kind: PortError,
        /// The instruction.
        span: Span,
    },
    /// A bad STOPSIGNAL (checked after expansion).
    #[error("invalid signal: {value}")]
    Signal {
        /// The value.
        value: String,
        /// The instruction.
        span: Span,
    },
}

impl Error {
    /// Where in the source the error is.
    pub fn span(&self) -> Span {
        match self {
            Error::UnknownInstruction { span, .. }
            | Error::NotACommand { span, .. }
            | Error::NoBuildStage { span, .. }
            | Error::UnknownFlag { span, .. }
            | Error::DuplicateFlag { span, .. }
            | Error::MissingFlagValue { span, .. }
            | Error::InvalidBoolFlag { span, .. }
            | Error::AtLeastOneArgument { span, .. }
            | Error::ExactlyOneArgument { span, .. }
            | Error::NoDestination { span, .. }
            | Error::HeredocDestination { span, .. }
            | Error::BlankName { span, .. }
            | Error::TooManyArguments { span, .. }
            | Error::NotJson { span, .. }
            | Error::FromArguments { span }
            | Error::InvalidStageName { span, .. }
            | Error::OnbuildEmpty { span }
            | Error::OnbuildChain { span }
            | Error::OnbuildTrigger { span, .. }
            | Error::HealthcheckNoneArgs { span }
            | Error::HealthcheckMissingCommand { span }
            | Error::HealthcheckType { span, .. }
            | Error::InvalidDuration { span, .. }
            | Error::DurationTooShort { span, .. }
            | Error::InvalidRetries { span, .. }
            | Error::NegativeRetries { span, .. }
            | Error::EmptyVolume { span }
            | Error::Mount { span, .. }
            | Error::Network { span, .. }
            | Error::Security { span, .. }
            | Error::Chmod { span, .. }
            | Error::Port { span, .. }
            | Error::Signal { span, .. } => *span,
        }
    }
}
