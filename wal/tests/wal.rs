mod common;

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};

use aegis_wal::{Wal, WalError, WalOptions};
use common::{
    append_range, assert_range, exact_files, files_ending, payload, segment_files, small_segments,
};

#[test]
fn append_reopen_read_back() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        assert_eq!((wal.first_index(), wal.last_index()), (None, None));
        append_range(&mut wal, 1, 101, 7, 0);
        assert!(wal.last_sync_seconds() > 0.0);
        assert_eq!(wal.len(), 100);
    }
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.recovery().torn_tail, None);
    assert_eq!((wal.first_index(), wal.last_index()), (Some(1), Some(100)));
    assert_range(&wal, 1, 101, 0);
    assert_eq!(wal.get(0), None);
    assert_eq!(wal.get(101), None);
    let r = wal.range(98, 1000);
    assert_eq!(
        r,
        vec![
            (98, payload(98, 0)),
            (99, payload(99, 0)),
            (100, payload(100, 0))
        ]
    );
    assert!(wal.range(50, 50).is_empty());
}

#[test]
fn log_may_start_at_any_index_including_zero() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        append_range(&mut wal, 0, 3, 3, 0);
    }
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (Some(0), Some(2)));
    assert_range(&wal, 0, 3, 0);
}

#[test]
fn non_contiguous_append_is_rejected_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    append_range(&mut wal, 5, 10, 5, 0);
    let p = payload(11, 0);
    assert!(matches!(
        wal.append(&[(11, &p)]),
        Err(WalError::NonContiguous {
            expected: 10,
            got: 11
        })
    ));
    // A gap inside the batch is caught too, before anything is written.
    assert!(matches!(
        wal.append(&[(10, &p), (12, &p)]),
        Err(WalError::NonContiguous {
            expected: 11,
            got: 12
        })
    ));
    assert!(matches!(
        wal.append(&[(9, &p)]),
        Err(WalError::NonContiguous {
            expected: 10,
            got: 9
        })
    ));
    // The log is still usable and unchanged.
    assert_eq!(wal.last_index(), Some(9));
    wal.append(&[]).unwrap();
    append_range(&mut wal, 10, 12, 2, 0);
    drop(wal);
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (Some(5), Some(11)));
    assert_range(&wal, 5, 12, 0);
}

#[test]
fn truncate_then_append_different_data_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small_segments(512);
    {
        let mut wal = Wal::open(dir.path(), opts).unwrap();
        append_range(&mut wal, 1, 60, 4, 0);
        assert!(segment_files(dir.path()).len() > 3);
        // Past the end: nothing to do.
        wal.truncate_from(60).unwrap();
        // Reaches back into an older segment.
        wal.truncate_from(10).unwrap();
        assert_eq!(wal.last_index(), Some(9));
        assert_eq!(wal.get(10), None);
        append_range(&mut wal, 10, 40, 3, 1);
        wal.truncate_from(35).unwrap();
        append_range(&mut wal, 35, 45, 10, 2);
    }
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (Some(1), Some(44)));
    assert_range(&wal, 1, 10, 0);
    assert_range(&wal, 10, 35, 1);
    assert_range(&wal, 35, 45, 2);
    let names = segment_files(dir.path());
    let mut sorted = names.clone();
    sorted.dedup();
    assert_eq!(names, sorted, "segment names stay unique and ordered");
}

#[test]
fn truncating_everything_allows_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        append_range(&mut wal, 1, 10, 3, 0);
        wal.truncate_from(1).unwrap();
        assert_eq!(wal.last_index(), None);
        append_range(&mut wal, 1, 4, 3, 9);
    }
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (Some(1), Some(3)));
    assert_range(&wal, 1, 4, 9);
}

#[test]
fn purge_deletes_old_segments_and_reopen_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small_segments(1024);
    {
        let mut wal = Wal::open(dir.path(), opts).unwrap();
        append_range(&mut wal, 1, 301, 5, 0);
        let before = segment_files(dir.path());
        assert!(before.len() > 10, "{before:?}");
        wal.purge_upto(150).unwrap();
        let after = segment_files(dir.path());
        assert!(after.len() < before.len());
        // The first remaining segment still holds index 151 (its name is its first index).
        let first_start: u64 = after[0].trim_end_matches(".wal").parse().unwrap();
        assert!(first_start <= 151, "{after:?}");
        // ...and the next one starts past the purge point, or it would have been deleted.
        let second_start: u64 = after[1].trim_end_matches(".wal").parse().unwrap();
        assert!(second_start > 151, "{after:?}");
        assert_eq!(wal.first_index(), Some(151));
        assert_eq!(wal.purged_upto(), Some(150));
        assert_eq!(wal.get(150), None);
        // Purging again at or below the purge point changes nothing.
        wal.purge_upto(100).unwrap();
        assert_eq!(wal.purged_upto(), Some(150));
    }
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!(wal.purged_upto(), Some(150));
    assert_eq!(
        (wal.first_index(), wal.last_index()),
        (Some(151), Some(300))
    );
    assert_range(&wal, 151, 301, 0);
    assert_eq!(wal.get(150), None);
}

fn wait_until_gone(dir: &std::path::Path, suffix: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !files_ending(dir, suffix).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "still there: {:?}",
            files_ending(dir, suffix)
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn purged_segments_leave_the_directory_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small_segments(1024)).unwrap();
    append_range(&mut wal, 1, 301, 5, 0);
    let before = segment_files(dir.path()).len();
    wal.purge_upto(150).unwrap();
    let kept = segment_files(dir.path()).len();
    assert!(kept < before, "{kept} of {before} segments kept");
    wait_until_gone(dir.path(), ".purged");
    assert_eq!(segment_files(dir.path()).len(), kept);
}

#[test]
fn a_purged_file_left_by_a_crash_is_removed_at_open_and_never_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small_segments(1024);
    {
        let mut wal = Wal::open(dir.path(), opts).unwrap();
        append_range(&mut wal, 1, 101, 5, 0);
    }
    // As if a process had renamed the first segment out of the log and died while shrinking
    // it: a cut-off segment under the `.purged` name, entries 1.. still inside.
    let first = segment_files(dir.path()).remove(0);
    let purged = dir.path().join(first.replace(".wal", ".purged"));
    let bytes = fs::read(dir.path().join(&first)).unwrap();
    fs::write(&purged, &bytes[..bytes.len() / 2]).unwrap();
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (Some(1), Some(100)));
    assert_range(&wal, 1, 101, 0);
    wait_until_gone(dir.path(), ".purged");
    assert!(dir.path().join(&first).exists(), "the segment itself stays");
}

#[test]
fn purge_past_the_end_keeps_the_purge_point_and_its_meta() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small_segments(256);
    {
        let mut wal = Wal::open(dir.path(), opts).unwrap();
        append_range(&mut wal, 1, 40, 2, 0);
        // As after installing a snapshot that is ahead of the local log.
        wal.purge_upto_with_meta(100, b"term 7").unwrap();
        assert_eq!((wal.first_index(), wal.last_index()), (None, None));
        assert_eq!(segment_files(dir.path()).len(), 1);
        let p = payload(100, 0);
        assert!(matches!(
            wal.append(&[(100, &p)]),
            Err(WalError::NonContiguous {
                expected: 101,
                got: 100
            })
        ));
        assert!(matches!(
            wal.truncate_from(100),
            Err(WalError::TruncatePurged {
                from: 100,
                purged: 100
            })
        ));
        append_range(&mut wal, 101, 111, 5, 3);
    }
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!(wal.purged_upto(), Some(100));
    assert_eq!(wal.purged_meta(), Some(&b"term 7"[..]));
    assert_eq!(
        (wal.first_index(), wal.last_index()),
        (Some(101), Some(110))
    );
    assert_range(&wal, 101, 111, 3);
}

#[test]
fn purge_on_a_fresh_log_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        wal.purge_upto(41).unwrap();
    }
    let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.purged_upto(), Some(41));
    assert_eq!(wal.purged_meta(), Some(&b""[..]));
    append_range(&mut wal, 42, 45, 3, 0);
    assert_range(&wal, 42, 45, 0);
}

#[test]
fn segments_roll_across_many_appends() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small_segments(4096);
    let wal_segments;
    {
        let mut wal = Wal::open(dir.path(), opts).unwrap();
        append_range(&mut wal, 1, 2001, 3, 0);
        wal_segments = wal.segment_paths();
    }
    let names = segment_files(dir.path());
    assert!(names.len() > 20, "{}", names.len());
    assert_eq!(names.len(), wal_segments.len());
    assert_eq!(names[0], "00000000000000000001.wal");
    let wal = Wal::open(dir.path(), opts).unwrap();
    let mut prev_start = 0;
    for name in &names {
        let start: u64 = name.trim_end_matches(".wal").parse().unwrap();
        assert!(start > prev_start);
        prev_start = start;
        // Without truncation each segment is named by the first entry it holds.
        assert!(wal.get(start).is_some());
        assert!(wal.get(start - 1).is_some() || start == 1);
        // A segment is only rolled once full, so none is much larger than the limit.
        let len = fs::metadata(dir.path().join(name)).unwrap().len();
        assert!(len < 4096 + 3 * 300, "{name} is {len} bytes");
    }
    assert_range(&wal, 1, 2001, 0);
}

/// Cuts a few bytes off the last segment, as a crash in the middle of a write would.
#[test]
fn torn_tail_cut_short_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let opts = exact_files(2048);
    {
        let mut wal = Wal::open(dir.path(), opts).unwrap();
        append_range(&mut wal, 1, 100, 1, 0);
    }
    let last = dir.path().join(segment_files(dir.path()).pop().unwrap());
    let len = fs::metadata(&last).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    let mut wal = Wal::open(dir.path(), opts).unwrap();
    let torn = wal.recovery().torn_tail.clone().expect("tail reported");
    assert_eq!(torn.segment, last);
    let frame_len = 17 + payload(99, 0).len() as u64;
    assert_eq!(torn.offset, len - frame_len);
    assert_eq!(torn.bytes_dropped, frame_len - 3);
    assert_eq!(fs::metadata(&last).unwrap().len(), len - frame_len);
    assert_eq!(wal.last_index(), Some(98));
    assert_range(&wal, 1, 99, 0);
    // The log continues cleanly where the damage was.
    append_range(&mut wal, 99, 105, 2, 5);
    drop(wal);
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!(wal.recovery().torn_tail, None);
    assert_range(&wal, 1, 99, 0);
    assert_range(&wal, 99, 105, 5);
}

/// Bytes the records of `from..to` (salt 0) take in a fresh log: segment header and frames.
fn records_len(from: u64, to: u64) -> u64 {
    8 + (from..to)
        .map(|i| 17 + payload(i, 0).len() as u64)
        .sum::<u64>()
}

/// A log with entries 1..=49 written with the default options (zeros kept ahead), closed: its
/// directory, the options, its one segment and where the records in it end.
fn entries_1_to_49_with_zeros_ahead() -> (tempfile::TempDir, WalOptions, std::path::PathBuf, u64) {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions::default();
    {
        let mut wal = Wal::open(dir.path(), opts).unwrap();
        append_range(&mut wal, 1, 50, 3, 0);
    }
    let last = dir.path().join(segment_files(dir.path()).pop().unwrap());
    (dir, opts, last, records_len(1, 50))
}

/// The writer keeps zeros written ahead of its records so an fdatasync never has to write the
/// inode: reopening finds where the records end, reports no damage, and later appends go
/// over the zeros without growing the file.
#[test]
fn zeros_written_ahead_are_not_damage() {
    let (dir, opts, last, records) = entries_1_to_49_with_zeros_ahead();
    let file_len = fs::metadata(&last).unwrap().len();
    assert_eq!(file_len, records_len(1, 4) + opts.preallocate_bytes);
    let bytes = fs::read(&last).unwrap();
    assert!(bytes[records as usize..].iter().all(|&b| b == 0));

    let mut wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!(wal.recovery().torn_tail, None);
    assert_range(&wal, 1, 50, 0);
    append_range(&mut wal, 50, 80, 4, 0);
    assert_eq!(fs::metadata(&last).unwrap().len(), file_len);
    drop(wal);
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!(wal.recovery().torn_tail, None);
    assert_eq!(wal.last_index(), Some(79));
    assert_range(&wal, 1, 80, 0);
}

/// A crash inside a write over the zeros leaves the start of a frame followed by zeros: a
/// torn tail, cut off, and the log goes on from there.
#[test]
fn a_frame_torn_over_the_zeros_is_a_torn_tail() {
    let (dir, opts, last, records) = entries_1_to_49_with_zeros_ahead();
    let mut f = OpenOptions::new().write(true).open(&last).unwrap();
    f.seek(SeekFrom::Start(records)).unwrap();
    // A length and half a checksum of the next frame.
    f.write_all(&[40, 0, 0, 0, 0x9e, 0x31]).unwrap();
    drop(f);

    let mut wal = Wal::open(dir.path(), opts).unwrap();
    let torn = wal.recovery().torn_tail.clone().expect("tail reported");
    assert_eq!(
        (torn.segment.as_path(), torn.offset),
        (last.as_path(), records)
    );
    assert_eq!(fs::metadata(&last).unwrap().len(), records);
    assert_eq!(wal.last_index(), Some(49));
    append_range(&mut wal, 50, 60, 2, 0);
    drop(wal);
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!(wal.recovery().torn_tail, None);
    assert_range(&wal, 1, 60, 0);
}

#[test]
fn flipped_byte_in_the_last_frame_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let opts = exact_files(WalOptions::default().segment_bytes);
    {
        let mut wal = Wal::open(dir.path(), opts).unwrap();
        append_range(&mut wal, 1, 21, 4, 0);
    }
    let last = dir.path().join(segment_files(dir.path()).pop().unwrap());
    let len = fs::metadata(&last).unwrap().len();
    flip_byte(&last, len - 1);
    let wal = Wal::open(dir.path(), opts).unwrap();
    let torn = wal.recovery().torn_tail.clone().expect("tail reported");
    assert_eq!(torn.reason, "bad checksum in last frame");
    assert_eq!((wal.first_index(), wal.last_index()), (Some(1), Some(19)));
    assert_range(&wal, 1, 20, 0);
}

#[test]
fn damage_before_valid_frames_in_the_last_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        append_range(&mut wal, 1, 21, 4, 0);
    }
    let last = dir.path().join(segment_files(dir.path()).pop().unwrap());
    // Inside the payload of entry 1: header(8) + frame header(17) + a bit.
    flip_byte(&last, 8 + 17);
    let err = Wal::open(dir.path(), WalOptions::default()).unwrap_err();
    assert!(
        matches!(&err, WalError::Corrupt { segment, offset: 8, .. } if *segment == last),
        "{err}"
    );
}

#[test]
fn garbage_in_an_older_segment_is_a_corrupt_error() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small_segments(1024);
    {
        let mut wal = Wal::open(dir.path(), opts).unwrap();
        append_range(&mut wal, 1, 200, 3, 0);
    }
    let names = segment_files(dir.path());
    assert!(names.len() > 3);
    let victim = dir.path().join(&names[1]);
    let len = fs::metadata(&victim).unwrap().len();
    let mut f = OpenOptions::new().write(true).open(&victim).unwrap();
    f.seek(SeekFrom::Start(len / 2)).unwrap();
    f.write_all(b"\xde\xad\xbe\xef garbage").unwrap();
    drop(f);
    let err = Wal::open(dir.path(), opts).unwrap_err();
    match err {
        WalError::Corrupt {
            segment, offset, ..
        } => {
            assert_eq!(segment, victim);
            assert!(offset <= len / 2 && offset >= 8, "offset {offset}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }

    // A truncated older segment is corruption too, not a torn tail.
    let victim = dir.path().join(&names[0]);
    let len = fs::metadata(&victim).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    assert!(matches!(
        Wal::open(dir.path(), opts),
        Err(WalError::Corrupt { segment, .. }) if segment == victim
    ));
}

#[test]
fn partial_header_of_a_new_segment_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small_segments(256);
    {
        let mut wal = Wal::open(dir.path(), opts).unwrap();
        append_range(&mut wal, 1, 30, 2, 0);
    }
    // As if the process died while creating the next segment.
    let stray = dir.path().join("00000000000000000030.wal");
    fs::write(&stray, b"AEG").unwrap();
    let mut wal = Wal::open(dir.path(), opts).unwrap();
    assert_eq!(
        wal.recovery().torn_tail.as_ref().map(|t| t.reason),
        Some("partial segment header")
    );
    assert_eq!(wal.last_index(), Some(29));
    append_range(&mut wal, 30, 35, 5, 0);
    drop(wal);
    let wal = Wal::open(dir.path(), opts).unwrap();
    assert_range(&wal, 1, 35, 0);
}

#[test]
fn foreign_files_are_ignored_but_malformed_segment_names_are_not() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        append_range(&mut wal, 1, 5, 2, 0);
    }
    fs::write(dir.path().join("README"), b"notes").unwrap();
    assert_eq!(
        Wal::open(dir.path(), WalOptions::default())
            .unwrap()
            .last_index(),
        Some(4)
    );
    fs::write(dir.path().join("7.wal"), b"").unwrap();
    assert!(matches!(
        Wal::open(dir.path(), WalOptions::default()),
        Err(WalError::Corrupt { .. })
    ));
}

#[test]
fn meta_round_trip_and_atomic_replace() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        assert_eq!(wal.get_meta("vote"), None);
        wal.put_meta("vote", b"term=1;node=2").unwrap();
        wal.put_meta("committed", &42u64.to_le_bytes()).unwrap();
        wal.put_meta("vote", b"term=3;node=1").unwrap();
        assert_eq!(wal.get_meta("vote").unwrap(), b"term=3;node=1");
        assert!(matches!(
            wal.put_meta("../escape", b"x"),
            Err(WalError::InvalidMetaName { .. })
        ));
        assert!(matches!(
            wal.put_meta("", b"x"),
            Err(WalError::InvalidMetaName { .. })
        ));
    }
    let meta_dir = dir.path().join("meta");
    let mut names: Vec<String> = fs::read_dir(&meta_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["committed", "vote"],
        "no temp files left behind"
    );

    // A crash between writing the temp file and the rename leaves the old value in force.
    fs::write(meta_dir.join(".vote.tmp"), b"half-written").unwrap();
    let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.get_meta("vote").unwrap(), b"term=3;node=1");
    assert_eq!(wal.get_meta("committed").unwrap(), 42u64.to_le_bytes());
    assert!(!meta_dir.join(".vote.tmp").exists());
    wal.put_meta("empty", b"").unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.get_meta("empty").unwrap(), b"");
}

#[test]
fn damaged_meta_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        wal.put_meta("vote", b"term=3").unwrap();
    }
    let path = dir.path().join("meta").join("vote");
    flip_byte(&path, 5);
    assert!(matches!(
        Wal::open(dir.path(), WalOptions::default()),
        Err(WalError::CorruptMeta { path: p }) if p == path
    ));
    fs::write(&path, b"ab").unwrap();
    assert!(matches!(
        Wal::open(dir.path(), WalOptions::default()),
        Err(WalError::CorruptMeta { .. })
    ));
}

fn flip_byte(path: &std::path::Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

#[test]
fn unsynced_appends_are_readable_at_once_and_a_sync_point_from_another_thread_covers_them() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut wal = Wal::open(dir.path(), small_segments(512)).unwrap();
        assert!(wal.sync_point().is_none(), "nothing written yet");
        let mut syncs = Vec::new();
        for i in 1..=60u64 {
            let p = payload(i, 1);
            wal.append_unsynced(&[(i, &p)]).unwrap();
            assert_eq!(wal.get(i), Some(p.as_slice()));
            let point = wal.sync_point().expect("sync is on");
            // The writer keeps the log while another thread waits on the disk.
            syncs.push(std::thread::spawn(move || point.sync()));
        }
        for s in syncs {
            s.join().unwrap().unwrap();
        }
        assert!(segment_files(dir.path()).len() > 1, "segments rolled");
    }
    let wal = Wal::open(dir.path(), small_segments(512)).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (Some(1), Some(60)));
    assert_range(&wal, 1, 61, 1);
}

#[test]
fn no_sync_point_when_syncing_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(
        dir.path(),
        WalOptions {
            sync: false,
            ..WalOptions::default()
        },
    )
    .unwrap();
    let p = payload(1, 0);
    wal.append_unsynced(&[(1, &p)]).unwrap();
    assert!(wal.sync_point().is_none());
}
