//! The loopback interface of a `--network=none` step's own network namespace.
// `unsafe` here: the SIOCGIFFLAGS/SIOCSIFFLAGS ioctls have no safe wrapper in nix or rustix.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

/// Brings `lo` up. A new network namespace has only `lo`, and it is down
/// (network_namespaces(7)); without it even 127.0.0.1 is unreachable.
pub(crate) fn loopback_up() -> io::Result<()> {
    // Any AF_INET socket will do as the handle for interface ioctls (netdevice(7)).
    let sock = std::net::UdpSocket::bind("0.0.0.0:0")?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: a valid socket fd and a valid, initialised ifreq that outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: as above.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
