//! The file system mounted for real: written through syscalls and a shared
//! mapping, cut, mounted again.

#![allow(clippy::unwrap_used)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use mq_powercut::Disk;

fn sync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

#[test]
fn only_what_was_synced_survives_a_power_cut() {
    let at = tempfile::tempdir().unwrap();
    let disk = Disk::new();
    let mounted = disk.mount(at.path()).unwrap();
    let root = at.path();
    let dir = root.join("d");
    fs::create_dir(&dir).unwrap();
    sync_dir(root);

    let mut file = File::create(dir.join("f")).unwrap();
    file.write_all(b"synced").unwrap();
    file.sync_all().unwrap();
    file.write_all(b" and not").unwrap();
    drop(file);

    // A shared writable mapping: msync makes its first page durable, the
    // second page is only written to memory.
    let mapped = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("m"))
        .unwrap();
    mapped.set_len(8192).unwrap();
    mapped.sync_all().unwrap();
    sync_dir(&dir);
    // SAFETY: the file is this test's alone.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&mapped).unwrap() };
    map[..6].copy_from_slice(b"mapped");
    map.flush_range(0, 4096).unwrap();
    map[4096..4103].copy_from_slice(b"lost it");
    // Created, written and synced, but its directory never synced again.
    let mut orphan = File::create(dir.join("orphan")).unwrap();
    orphan.write_all(b"x").unwrap();
    orphan.sync_all().unwrap();
    drop(orphan);
    assert_eq!(fs::read(dir.join("f")).unwrap(), b"synced and not");

    // The writer dies first (a mount in use cannot go away).
    drop((map, mapped));
    mounted.power_cut().unwrap();
    let counts = disk.counts();
    assert!(
        counts.file_syncs >= 3 && counts.dir_syncs >= 2,
        "{counts:?}"
    );

    let _mounted = disk.mount(at.path()).unwrap();
    assert_eq!(fs::read(dir.join("f")).unwrap(), b"synced");
    let m = fs::read(dir.join("m")).unwrap();
    assert_eq!(m.len(), 8192);
    assert_eq!(&m[..6], b"mapped");
    assert!(
        m[4096..].iter().all(|&b| b == 0),
        "the unsynced page is gone"
    );
    assert!(!dir.join("orphan").exists());
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["f", "m"]);
}
