//! A small real file system to fill: a tmpfs mounted for one test and
//! unmounted when dropped, panic or not. Mounting needs root; a test that
//! uses it fails, naming that need, rather than skip.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a given size, mounted on a fresh directory.
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` reads it, e.g. `2m`).
    /// Panics, saying why, when not root or when mounting fails.
    pub fn mount(name: &str, size: &str) -> Tmpfs {
        assert!(
            is_root(),
            "this test mounts a small tmpfs and fills it: it needs root (the suite runs as root in CI; run it with sudo)"
        );
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "herald-tmpfs-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .expect("run mount");
        if !out.status.success() {
            let _ = std::fs::remove_dir(&dir);
            panic!(
                "mount -t tmpfs on {} failed ({}): {}",
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `name` until the file system is full. Returns its path.
    pub fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join(name);
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0x5a_u8; 64 * 1024];
        // The loop ends at the first short or failed write: the file system
        // is full then. Bounded, in case it never fills.
        for _ in 0..1024 {
            match file.write(&chunk) {
                Ok(n) if n == chunk.len() => {}
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        // What is left is less than a page: one more byte must not fit.
        loop {
            match file.write(&[0x5a]) {
                Ok(1) => {}
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily, when something still holds a file open (a hub that a
        // failed test left running): the mount goes once it is released.
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success())
            || Command::new("umount")
                .arg("-l")
                .arg(&self.dir)
                .status()
                .is_ok_and(|s| s.success());
        if unmounted {
            let _ = std::fs::remove_dir(&self.dir);
        } else {
            eprintln!("could not unmount the tmpfs at {}", self.dir.display());
        }
    }
}

/// Whether this process runs as root (effective uid 0), from
/// `/proc/self/status`.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}
