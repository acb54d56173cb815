//! The progress line `routeproof probe` keeps on a terminal's stderr while a run goes on:
//! targets done of the total, failures so far, and the time left to the run deadline,
//! redrawn in place (`\r`, then erase the line) at most every [`MIN_REDRAW`], and erased
//! when the run ends so only the report remains. The CLI uses it only when stderr is a
//! terminal and `--quiet` is not given; stdout carries the report and nothing else.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::probe::Progress;
use crate::report::TargetReport;

/// At most ten redraws a second, however fast targets finish.
pub const MIN_REDRAW: Duration = Duration::from_millis(100);

/// Back to the line's start and erase it (ANSI `EL2`, which every terminal emulator reads).
const ERASE: &str = "\r\x1b[2K";

#[derive(Default)]
struct State {
    total: usize,
    done: usize,
    failed: usize,
    deadline: Option<Instant>,
    /// When the line was last written, and what it said.
    drawn: Option<(Instant, String)>,
}

type Clock = Box<dyn Fn() -> Instant + Send + Sync>;

/// The line and where it goes (stderr in the CLI; a buffer and a fake clock in tests).
pub struct ProgressLine {
    state: Mutex<State>,
    out: Mutex<Box<dyn Write + Send>>,
    clock: Clock,
}

impl ProgressLine {
    pub fn new(out: Box<dyn Write + Send>, clock: Clock) -> ProgressLine {
        ProgressLine {
            state: Mutex::new(State::default()),
            out: Mutex::new(out),
            clock,
        }
    }

    pub fn stderr() -> ProgressLine {
        ProgressLine::new(Box::new(std::io::stderr()), Box::new(Instant::now))
    }

    /// [`tick`](Self::tick) at the line's clock.
    pub fn tick_now(&self) {
        self.tick((self.clock)(), false);
    }

    /// Redraws if the text changed and the last redraw is [`MIN_REDRAW`] old (or
    /// `force`). The CLI calls it on a timer too, so the time left counts down while a
    /// slow target holds the count still.
    pub fn tick(&self, now: Instant, force: bool) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Not started yet, or already cleared.
        if st.deadline.is_none() {
            return;
        }
        let text = line(&st, now);
        let due = match &st.drawn {
            None => true,
            Some((at, old)) => *old != text && (force || now.duration_since(*at) >= MIN_REDRAW),
        };
        if due {
            self.write(&format!("{ERASE}{text}"));
            st.drawn = Some((now, text));
        }
    }

    /// Erases the line, if one was drawn, and ends it: a tick that comes later (the
    /// CLI's timer, racing its abort) draws nothing. The report comes next.
    pub fn clear(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.deadline = None;
        if st.drawn.take().is_some() {
            self.write(ERASE);
        }
    }

    fn write(&self, s: &str) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // A terminal that went away is not the run's failure.
        let _ = out.write_all(s.as_bytes()).and_then(|()| out.flush());
    }
}

/// `routeproof: 3/10 done, 1 failed, 8s left`: short, so it never wraps (a wrapped line
/// cannot be erased with `\r`).
fn line(st: &State, now: Instant) -> String {
    let left = st
        .deadline
        .map(|d| d.saturating_duration_since(now))
        .unwrap_or_default();
    format!(
        "routeproof: {}/{} done, {} failed, {}s left",
        st.done,
        st.total,
        st.failed,
        left.as_secs_f64().ceil() as u64
    )
}

impl Progress for ProgressLine {
    fn started(&self, total: usize, deadline: Instant) {
        {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.total = total;
            st.deadline = Some(deadline);
        }
        self.tick((self.clock)(), true);
    }

    fn finished(&self, target: &TargetReport) {
        let last = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.done += 1;
            if !target.ok {
                st.failed += 1;
            }
            st.done >= st.total
        };
        // The final count is always drawn; the frames in between may be skipped.
        self.tick((self.clock)(), last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn report(ok: bool) -> TargetReport {
        TargetReport {
            name: "t".into(),
            target: "tcp://127.0.0.1:1".into(),
            source: None,
            ok,
            reached: None,
            failure: None,
            duration_ms: 1.0,
            route: Vec::new(),
            layers: Vec::new(),
            skipped: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// A clock the test moves by hand.
    fn clock(at: &Arc<Mutex<Instant>>) -> Clock {
        let at = Arc::clone(at);
        Box::new(move || *at.lock().unwrap())
    }

    #[test]
    fn counts_rate_limits_and_erases() {
        let buf = Buf::default();
        let t0 = Instant::now();
        let now = Arc::new(Mutex::new(t0));
        let p = ProgressLine::new(Box::new(buf.clone()), clock(&now));
        let at = |ms: u64| *now.lock().unwrap() = t0 + Duration::from_millis(ms);
        p.started(3, t0 + Duration::from_secs(9));
        assert!(
            buf.text()
                .ends_with("routeproof: 0/3 done, 0 failed, 9s left")
        );
        // Within MIN_REDRAW of the last frame: the count changes, nothing is written.
        at(50);
        p.finished(&report(true));
        assert_eq!(buf.text().matches(ERASE).count(), 1, "{:?}", buf.text());
        // Later, the timer's tick draws it.
        at(150);
        p.tick_now();
        assert!(
            buf.text().ends_with("1/3 done, 0 failed, 9s left"),
            "{:?}",
            buf.text()
        );
        // An unchanged text is never redrawn; the time left is, once it changes.
        at(400);
        p.tick_now();
        assert_eq!(buf.text().matches(ERASE).count(), 2);
        at(1100);
        p.tick_now();
        assert!(buf.text().ends_with("1/3 done, 0 failed, 8s left"));
        // The last target is drawn at once, whatever the rate.
        at(1120);
        p.finished(&report(false));
        p.finished(&report(false));
        assert!(
            buf.text().ends_with("3/3 done, 2 failed, 8s left"),
            "{:?}",
            buf.text()
        );
        p.clear();
        assert!(buf.text().ends_with(ERASE));
        // A tick after the end draws nothing.
        at(5000);
        p.tick_now();
        assert!(buf.text().ends_with(ERASE));
        // Nothing drawn, nothing to erase.
        let quiet = Buf::default();
        ProgressLine::new(Box::new(quiet.clone()), clock(&now)).clear();
        assert_eq!(quiet.text(), "");
    }

    #[test]
    fn time_left_counts_down_to_zero() {
        let st = State {
            total: 2,
            done: 1,
            failed: 0,
            deadline: Some(Instant::now()),
            drawn: None,
        };
        assert!(line(&st, Instant::now() + Duration::from_secs(5)).ends_with(" 0s left"));
    }
}
