//! What a libFuzzer run wrote to its log, read back: how many inputs it ran, in how long, and
//! where it saved the inputs that failed.

use std::path::PathBuf;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FuzzLog {
    /// Inputs run, from `Done N runs …` or else the last `#N` status line.
    pub runs: Option<u64>,
    /// Seconds, from `Done N runs in T second(s)`.
    pub seconds: Option<u64>,
    /// Saved failing inputs (`Test unit written to PATH`).
    pub findings: Vec<PathBuf>,
}

pub fn read(log: &str) -> FuzzLog {
    let mut read = FuzzLog::default();
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("Done ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if let [runs, "runs", "in", seconds, ..] = words.as_slice() {
                read.runs = runs.parse().ok().or(read.runs);
                read.seconds = seconds.parse().ok();
            }
        } else if let Some(rest) = line.strip_prefix('#') {
            if let Some(runs) = rest
                .split(|c: char| c.is_whitespace())
                .next()
                .and_then(|n| n.parse().ok())
            {
                read.runs = Some(runs);
            }
        }
        if let Some((_, path)) = line.split_once("Test unit written to ") {
            let path = PathBuf::from(path.trim());
            if !read.findings.contains(&path) {
                read.findings.push(path);
            }
        }
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_run() {
        let log = "INFO: Running with entropic power schedule (0xFF, 100).
#2\tINITED cov: 211 ft: 212 corp: 1/1b exec/s: 0 rss: 38Mb
#1048576\tpulse  cov: 530 ft: 1900 corp: 310/9876b lim: 4096 exec/s: 524288 rss: 60Mb
#9734512\tDONE   cov: 540 ft: 1950 corp: 320/10Kb lim: 4096 exec/s: 159582 rss: 80Mb
Done 9734512 runs in 61 second(s)
";
        assert_eq!(
            read(log),
            FuzzLog {
                runs: Some(9_734_512),
                seconds: Some(61),
                findings: vec![]
            }
        );
    }

    #[test]
    fn a_finding_is_located() {
        let log = "#12345\tNEW    cov: 500 ft: 1000 corp: 100/2Kb
==4242== ERROR: libFuzzer: deadly signal
artifact_prefix='/w/fuzz/artifacts/config_parse/'; Test unit written to /w/fuzz/artifacts/config_parse/crash-0123abcd
";
        let read = read(log);
        assert_eq!(read.runs, Some(12345));
        assert_eq!(read.seconds, None);
        assert_eq!(
            read.findings,
            [PathBuf::from(
                "/w/fuzz/artifacts/config_parse/crash-0123abcd"
            )]
        );
    }
}
