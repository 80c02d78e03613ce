//! Value syntaxes checked by instructions: Go durations (HEALTHCHECK), EXPOSE port
//! specifications and STOPSIGNAL signals.
//!
//! Ports and signals may contain variables, so BuildKit checks them only after expansion; the
//! stage walker calls [`parse_port`] and [`parse_signal`] then.

use std::time::Duration;

use serde::Serialize;

use super::error::PortError;

/// Parses a Go `time.ParseDuration` string (`30s`, `1m30s`, `1.5h`, `100ms`, `0`) into signed
/// nanoseconds. Returns `None` for anything Go rejects.
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_end);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let end = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(end)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_end = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let mut value = int.checked_mul(scale)?;
        let mut frac_scale = scale;
        for digit in frac_part.bytes() {
            frac_scale /= 10;
            value += i128::from(digit - b'0') * frac_scale;
        }
        total = total.checked_add(value)?;
        if total > i128::from(i64::MAX) {
            return None;
        }
        rest = after;
    }
    Some(if negative { -total } else { total })
}

/// Converts non-negative nanoseconds into a [`Duration`].
pub(crate) fn nanos_to_duration(nanos: i128) -> Duration {
    let nanos = u64::try_from(nanos).unwrap_or(0);
    Duration::from_nanos(nanos)
}

/// The transport protocol of an exposed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// One EXPOSE entry: a port or an inclusive range, with its protocol (tcp by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortSpec {
    /// First port.
    pub start: u16,
    /// Last port (equal to `start` for a single port).
    pub end: u16,
    /// The protocol.
    pub protocol: Protocol,
}

impl PortSpec {
    /// The image-config keys (`80/tcp`), one per port of the range.
    pub fn config_keys(&self) -> Vec<String> {
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        };
        (self.start..=self.end)
            .map(|p| format!("{p}/{proto}"))
            .collect()
    }
}

fn port_range(s: &str) -> Option<(u16, u16)> {
    let (start, end) = match s.split_once('-') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => {
            let p = s.parse().ok()?;
            (p, p)
        }
    };
    Some((start, end))
}

/// Parses an EXPOSE word as BuildKit's `parsePortSpec`: `[[ip:]hostPort:]port[-end][/proto]`
/// (`80`, `80/udp`, `8000-8010`, `127.0.0.1:8080:80/tcp`). Only the container part is kept; a
/// host part is checked and dropped, as BuildKit does. The protocol is case-insensitive and
/// defaults to tcp.
pub fn parse_port(spec: &str) -> Result<PortSpec, PortError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("".to_string(), "", *c),
        [h, c] => ("".to_string(), *h, *c),
        [rest @ .., h, c] => (rest.join(":"), *h, *c),
        [] => return Err(PortError::Empty),
    };
    let (container, proto) = container.split_once('/').unwrap_or((container, ""));
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "" | "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => {
            return Err(PortError::InvalidProtocol {
                value: proto.to_string(),
            });
        }
    };
    if !ip.is_empty() {
        let bare = ip
            .strip_prefix('[')
            .and_then(|i| i.strip_suffix(']'))
            .unwrap_or(&ip);
        if bare.parse::<std::net::IpAddr>().is_err() {
            return Err(PortError::InvalidIp { value: ip.clone() });
        }
    }
    if container.is_empty() {
        return Err(PortError::Empty);
    }
    let (start, end) = port_range(container).ok_or(PortError::InvalidNumber {
        value: container.to_string(),
    })?;
    if end < start {
        return Err(PortError::InvertedRange { start, end });
    }
    if !host.is_empty() {
        let (hs, he) = port_range(host).ok_or(PortError::InvalidHostPort {
            value: host.to_string(),
        })?;
        if he < hs {
            return Err(PortError::InvertedRange { start: hs, end: he });
        }
        if end - start != he - hs && end != start {
            return Err(PortError::RangeMismatch {
                container: container.to_string(),
                host: host.to_string(),
            });
        }
    }
    Ok(PortSpec {
        start,
        end,
        protocol,
    })
}

/// The Linux signal names Docker accepts (without the `SIG` prefix), with their numbers.
const SIGNALS: &[(&str, u32)] = &[
    ("ABRT", 6),
    ("ALRM", 14),
    ("BUS", 7),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("FPE", 8),
    ("HUP", 1),
    ("ILL", 4),
    ("INT", 2),
    ("IO", 29),
    ("IOT", 6),
    ("KILL", 9),
    ("PIPE", 13),
    ("POLL", 29),
    ("PROF", 27),
    ("PWR", 30),
    ("QUIT", 3),
    ("SEGV", 11),
    ("STKFLT", 16),
    ("STOP", 19),
    ("SYS", 31),
    ("TERM", 15),
    ("TRAP", 5),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("USR1", 10),
    ("USR2", 12),
    ("VTALRM", 26),
    ("WINCH", 28),
    ("XCPU", 24),
    ("XFSZ", 25),
];

/// Checks a STOPSIGNAL value as moby's `signal.ParseSignal`: a number, or a name with or without
/// `SIG` (`SIGTERM`, `term`, `RTMIN+3`). Returns the signal number.
pub fn parse_signal(value: &str) -> Option<u32> {
    if let Ok(n) = value.parse::<u32>() {
        return (n != 0).then_some(n);
    }
    let upper = value.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = SIGNALS.iter().find(|(s, _)| *s == name) {
        return Some(n);
    }
    let rt = |base: u32, rest: &str, sign: i64| -> Option<u32> {
        if rest.is_empty() {
            return Some(base);
        }
        let offset: i64 = rest.parse().ok()?;
        let n = i64::from(base) + sign * offset;
        (34..=64).contains(&n).then_some(n as u32)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return match rest.strip_prefix('+') {
            Some(r) => rt(34, r, 1),
            None => rt(34, rest, 1).filter(|_| rest.is_empty()),
        };
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return match rest.strip_prefix('-') {
            Some(r) => rt(64, r, -1),
            None => rt(64, rest, 1).filter(|_| rest.is_empty()),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("100ms"), Some(100_000_000));
        assert_eq!(parse_go_duration("2us"), Some(2_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("-1s"), Some(-1_000_000_000));
        assert_eq!(parse_go_duration(".5s"), Some(500_000_000));
        assert_eq!(parse_go_duration("30"), None);
        assert_eq!(parse_go_duration("1d"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("s"), None);
    }

    #[test]
    fn ports_and_ranges() {
        assert_eq!(
            parse_port("80"),
            Ok(PortSpec {
                start: 80,
                end: 80,
                protocol: Protocol::Tcp
            })
        );
        assert_eq!(parse_port("53/UDP").unwrap().protocol, Protocol::Udp);
        assert_eq!(parse_port("9/sctp").unwrap().protocol, Protocol::Sctp);
        let range = parse_port("8000-8002/tcp").unwrap();
        assert_eq!(range.config_keys(), ["8000/tcp", "8001/tcp", "8002/tcp"]);
        assert_eq!(
            parse_port("8010-8000"),
            Err(PortError::InvertedRange {
                start: 8010,
                end: 8000
            })
        );
        assert!(matches!(
            parse_port("70000"),
            Err(PortError::InvalidNumber { .. })
        ));
        assert!(matches!(
            parse_port("80/icmp"),
            Err(PortError::InvalidProtocol { .. })
        ));
        assert!(matches!(
            parse_port("abc"),
            Err(PortError::InvalidNumber { .. })
        ));
        assert_eq!(
            parse_port("8080:80").unwrap().start,
            80,
            "the host part is dropped"
        );
        assert_eq!(
            parse_port("127.0.0.1:8080:80/udp").unwrap().protocol,
            Protocol::Udp
        );
        assert_eq!(parse_port("[::1]:8080:80").unwrap().start, 80);
        assert!(matches!(
            parse_port("bogus:8080:80"),
            Err(PortError::InvalidIp { .. })
        ));
        assert!(matches!(
            parse_port("x:80"),
            Err(PortError::InvalidHostPort { .. })
        ));
        assert!(matches!(
            parse_port("1-3:80-81"),
            Err(PortError::RangeMismatch { .. })
        ));
        assert_eq!(parse_port("80/").unwrap().protocol, Protocol::Tcp);
        assert_eq!(parse_port(""), Err(PortError::Empty));
        assert_eq!(parse_port("/udp"), Err(PortError::Empty));
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("kill"), Some(9));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("SIGRTMIN+3"), Some(37));
        assert_eq!(parse_signal("RTMAX-1"), Some(63));
        assert_eq!(parse_signal("SIGFOO"), None);
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal(""), None);
    }
}
