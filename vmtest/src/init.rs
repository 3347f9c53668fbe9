//! What /init must do in a VM with nothing else in it: the pseudo file systems, loopback
//! up, and a way out.
use std::{ffi::CString, io, net::TcpListener};

/// Mounts proc, sysfs, devtmpfs, tracefs, bpffs; brings `lo` up.
pub fn setup() -> io::Result<()> {
    for (fstype, target) in [
        ("proc", "/proc"),
        ("sysfs", "/sys"),
        ("devtmpfs", "/dev"),
        ("tracefs", "/sys/kernel/tracing"),
        ("bpf", "/sys/fs/bpf"),
        ("tmpfs", "/tmp"),
    ] {
        mount(fstype, target)?;
    }
    loopback_up()
}

fn mount(fstype: &str, target: &str) -> io::Result<()> {
    std::fs::create_dir_all(target)?;
    let (src, fs, dst) = (cstr(fstype), cstr(fstype), cstr(target));
    // SAFETY: valid NUL-terminated strings; no data argument.
    let r = unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
    if r != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EBUSY) {
            return Err(io::Error::other(format!("mount {fstype} on {target}: {e}")));
        }
    }
    Ok(())
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

/// `ip link set lo up`, with the SIOCSIFFLAGS ioctl.
fn loopback_up() -> io::Result<()> {
    // SAFETY: plain syscalls on a socket we own; ifreq is zeroed and NUL-terminated.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        let r = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        let e = io::Error::last_os_error();
        libc::close(fd);
        if r != 0 {
            return Err(io::Error::other(format!("SIOCSIFFLAGS lo: {e}")));
        }
    }
    // The address comes with the link; check that it is there.
    TcpListener::bind("127.0.0.1:0").map(drop)
}

/// Ends the VM: the kernel reboots, and QEMU (-no-reboot) exits.
pub fn halt() -> ! {
    // SAFETY: plain syscalls.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
    }
    std::process::exit(0)
}
