//! Device numbers as `/proc/PID/maps` prints them (`fe:00`), compared
//! with a file's `st_dev`: how a mapping is matched with the file on disk.

/// `st_dev` as `major:minor` (glibc's encoding of the two numbers).
pub(crate) fn dev_string(dev: u64) -> String {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    format!("{major:02x}:{minor:02x}")
}

/// Whether `st_dev` is the device `/proc/PID/maps` prints as `dev`.
pub(crate) fn same_dev(st_dev: u64, dev: &str) -> bool {
    parse_dev(&dev_string(st_dev)).is_some_and(|d| Some(d) == parse_dev(dev))
}

/// Whether two `major:minor` strings name the same device.
pub(crate) fn same_dev_string(a: &str, b: &str) -> bool {
    parse_dev(a).is_some_and(|d| Some(d) == parse_dev(b))
}

/// `major:minor` normalised, so `fe:00` and `0fe:000` compare equal.
pub(crate) fn parse_dev(dev: &str) -> Option<(u64, u64)> {
    let (major, minor) = dev.split_once(':')?;
    Some((
        u64::from_str_radix(major, 16).ok()?,
        u64::from_str_radix(minor, 16).ok()?,
    ))
}
