//! What a Rust test binary (libtest's default format) prints, read back: each test's result, and
//! whether the binary got as far as its closing tally.

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub passed: Vec<String>,
    pub failed: Vec<String>,
    pub ignored: Vec<String>,
    /// The binary printed its `test result:` line (it did not die midway).
    pub finished: bool,
}

impl Outcome {
    pub fn ran(&self) -> usize {
        self.passed.len() + self.failed.len()
    }
}

/// Reads a test binary's output (`test NAME ... ok|FAILED|ignored` lines and the tally).
pub fn read(output: &str) -> Outcome {
    let mut outcome = Outcome::default();
    for line in output.lines() {
        if line.starts_with("test result: ") {
            outcome.finished = true;
            continue;
        }
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, result)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        // `#[should_panic]` tests are listed as `NAME - should panic`.
        let name = name
            .strip_suffix(" - should panic")
            .unwrap_or(name)
            .to_owned();
        match result.trim_end() {
            "ok" => outcome.passed.push(name),
            "FAILED" => outcome.failed.push(name),
            r if r.starts_with("ignored") => outcome.ignored.push(name),
            _ => {}
        }
    }
    outcome
}

/// Reads `--list` output: one `NAME: test` line per test.
pub fn listed(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILING: &str = "
running 4 tests
test the_compose_file_serves_a_plugin_folder ... ok
test slow_one has been running for over 60 seconds
test the_oci_image_is_a_valid_compat_layout_holding_the_plugin ... FAILED
test not_today ... ignored, needs a cluster
test slow_one ... FAILED
test panics_on_purpose - should panic ... ok

failures:

---- the_oci_image_is_a_valid_compat_layout_holding_the_plugin stdout ----
thread 'the_oci_image_is_a_valid_compat_layout_holding_the_plugin' panicked at e2e/tests/deploy.rs:240:5:
skopeo is needed for this test

failures:
    slow_one
    the_oci_image_is_a_valid_compat_layout_holding_the_plugin

test result: FAILED. 2 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 61.02s
";

    #[test]
    fn every_result_is_read() {
        let outcome = read(FAILING);
        assert_eq!(
            outcome.failed,
            [
                "the_oci_image_is_a_valid_compat_layout_holding_the_plugin",
                "slow_one"
            ]
        );
        assert!(outcome
            .passed
            .contains(&"the_compose_file_serves_a_plugin_folder".to_owned()));
        assert!(outcome.passed.contains(&"panics_on_purpose".to_owned()));
        assert_eq!(outcome.ignored, ["not_today"]);
        assert!(outcome.finished);
    }

    #[test]
    fn a_binary_that_died_midway_is_not_finished() {
        let outcome = read("running 2 tests\ntest a ... ok\n");
        assert_eq!(outcome.passed, ["a"]);
        assert!(!outcome.finished);
    }

    #[test]
    fn lists_names() {
        let names = listed("authz_one: test\nsome::nested: test\n\n2 tests, 0 benchmarks\n");
        assert_eq!(names, ["authz_one", "some::nested"]);
    }
}
