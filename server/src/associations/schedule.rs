//! Association schedules, as AWS State Manager writes them, and the
//! arithmetic the scheduler needs, against any clock:
//!
//! - `cron(MIN HOUR DOM MONTH DOW YEAR)`: AWS's six fields, `?` allowed,
//!   days of the week 1–7 = SUN–SAT (or names);
//! - `MIN HOUR DOM MONTH DOW`: a plain five-field cron expression (0–7, 0 and 7 = Sunday);
//! - `rate(N minute[s]|hour[s]|day[s])`: every N from the association's creation;
//! - `at(YYYY-MM-DDTHH:MM:SS[Z|±HH:MM])`: once.
//!
//! Cron and `at` without an offset are read in the association's time zone
//! (IANA name, default UTC), so `cron(0 2 ? * SUN *)` in Europe/Paris is
//! 02:00 Paris time in summer and in winter. A wall-clock time that a DST
//! change skips runs at the first instant after the gap; one that happens
//! twice runs once, at its first occurrence.

use std::time::Duration;

use croner::Cron;
use croner::parser::CronParser;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

#[derive(Debug, Clone)]
pub enum Schedule {
    Cron { cron: Box<Cron>, tz: TimeZone },
    Rate(Duration),
    At(Timestamp),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(String);

fn err(s: impl Into<String>) -> ScheduleError {
    ScheduleError(s.into())
}

/// What the scheduler should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The slot to run now: the latest one due. Missed earlier slots are
    /// not run one by one; this single run catches up.
    pub run: Option<Timestamp>,
    /// Slots that were due and are not run (the catch-up covers them, or a
    /// previous run was still going).
    pub skipped: usize,
    /// When to look again: the next slot after now (None: never, an `at` that has run).
    pub next: Option<Timestamp>,
}

/// Milliseconds since the epoch (as the store keeps times) as a timestamp.
pub fn from_ms(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl Schedule {
    /// Parses `expr` in time zone `tz` (IANA name; None: UTC). A rate
    /// below `min_rate` is refused (a server setting).
    pub fn parse(expr: &str, tz: Option<&str>, min_rate: Duration) -> Result<Schedule, ScheduleError> {
        let zone = match tz {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|e| err(format!("time zone {name:?}: {e}")))?,
        };
        let expr = expr.trim();
        if let Some(inner) = expr.strip_prefix("cron(").and_then(|e| e.strip_suffix(')')) {
            let fields: Vec<&str> = inner.split_whitespace().collect();
            if fields.len() != 6 {
                return Err(err(format!(
                    "{expr:?}: cron() takes six fields (minutes hours day-of-month month day-of-week year); \
                     a five-field expression is written without cron()"
                )));
            }
            // Seconds first for croner; AWS numbers the days of the week 1–7 from Sunday.
            let cron = CronParser::builder()
                .alternative_weekdays(true)
                .build()
                .parse(&format!("0 {inner}"))
                .map_err(|e| err(format!("{expr:?}: {e}")))?;
            return Ok(Schedule::Cron { cron: Box::new(cron), tz: zone });
        }
        if let Some(inner) = expr.strip_prefix("rate(").and_then(|e| e.strip_suffix(')')) {
            let (n, unit) = inner.trim().split_once(' ').ok_or_else(|| err(format!("{expr:?}: rate(N unit)")))?;
            let n: u64 = n.parse().map_err(|_| err(format!("{expr:?}: {n:?} is not a whole number")))?;
            let secs = match unit.trim() {
                "second" | "seconds" => 1,
                "minute" | "minutes" => 60,
                "hour" | "hours" => 3600,
                "day" | "days" => 86_400,
                other => return Err(err(format!("{expr:?}: unit {other:?} (minutes, hours or days)"))),
            };
            let every = Duration::from_secs(n.saturating_mul(secs));
            if every < min_rate || every.is_zero() {
                return Err(err(format!(
                    "{expr:?} is more often than this server allows (at least every {})",
                    humantime::format_duration(min_rate)
                )));
            }
            return Ok(Schedule::Rate(every));
        }
        if let Some(inner) = expr.strip_prefix("at(").and_then(|e| e.strip_suffix(')')) {
            let inner = inner.trim();
            let at = match inner.parse::<Timestamp>() {
                Ok(t) => t,
                Err(_) => {
                    let civil: jiff::civil::DateTime =
                        inner.parse().map_err(|e| err(format!("{expr:?}: not a date and time ({e})")))?;
                    zone.to_ambiguous_zoned(civil).compatible().map_err(|e| err(format!("{expr:?}: {e}")))?.timestamp()
                }
            };
            return Ok(Schedule::At(at));
        }
        if expr.split_whitespace().count() == 5 {
            let cron = CronParser::new().parse(expr).map_err(|e| err(format!("{expr:?}: {e}")))?;
            return Ok(Schedule::Cron { cron: Box::new(cron), tz: zone });
        }
        Err(err(format!("{expr:?}: use cron(…six fields…), a five-field cron expression, rate(N unit) or at(TIME)")))
    }

    /// The first slot strictly after `after`. `anchor` is where a rate
    /// counts from (the association's creation).
    pub fn next_after(&self, after: Timestamp, anchor: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Cron { cron, tz } => {
                let z = Zoned::new(after, tz.clone());
                cron.find_next_occurrence(&z, false).ok().map(|n| n.timestamp())
            }
            Schedule::Rate(every) => {
                let every = jiff::SignedDuration::try_from(*every).ok()?;
                if after < anchor {
                    return Some(anchor);
                }
                let since = after.duration_since(anchor).as_nanos();
                let step = every.as_nanos().max(1);
                let k = since / step + 1;
                let offset = jiff::SignedDuration::from_nanos(i64::try_from(k.checked_mul(step)?).ok()?);
                anchor.checked_add(offset).ok()
            }
            Schedule::At(t) => (*t > after).then_some(*t),
        }
    }

    /// What to do at `now`: `last` is the last slot that ran (None: never),
    /// `anchor` the association's creation, `running` whether its previous
    /// run is still going (an association never overlaps itself: the slot
    /// is skipped, and the next one is looked at as usual).
    pub fn due(&self, last: Option<Timestamp>, anchor: Timestamp, now: Timestamp, running: bool) -> Due {
        // Slots after the last one that ran (or after the anchor), up to now.
        let from = last.unwrap_or_else(|| anchor.checked_sub(jiff::SignedDuration::from_nanos(1)).unwrap_or(anchor));
        let mut due = Vec::new();
        let mut t = from;
        while let Some(n) = self.next_after(t, anchor) {
            if n > now {
                break;
            }
            due.push(n);
            t = n;
            if due.len() > 1_000 {
                // A fine rate after a very long downtime: enough to know it is late.
                if let Some(latest) = self.latest_at_or_before(now, anchor) {
                    due.push(latest);
                }
                break;
            }
        }
        let next = self.next_after(now, anchor);
        match due.last().copied() {
            None => Due { run: None, skipped: 0, next },
            Some(_) if running => Due { run: None, skipped: due.len(), next },
            Some(latest) => Due { run: Some(latest), skipped: due.len() - 1, next },
        }
    }

    fn latest_at_or_before(&self, now: Timestamp, anchor: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Cron { cron, tz } => {
                let z = Zoned::new(now, tz.clone());
                cron.find_previous_occurrence(&z, true).ok().map(|p| p.timestamp())
            }
            Schedule::Rate(every) => {
                let step = jiff::SignedDuration::try_from(*every).ok()?.as_nanos().max(1);
                let since = now.duration_since(anchor).as_nanos();
                let k = since / step;
                anchor.checked_add(jiff::SignedDuration::from_nanos(i64::try_from(k * step).ok()?)).ok()
            }
            Schedule::At(t) => (*t <= now).then_some(*t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(s: &Schedule, after: &str) -> String {
        s.next_after(ts(after), ts("2026-01-01T00:00:00Z")).map(|t| t.to_string()).unwrap_or_default()
    }

    #[test]
    fn aws_cron_with_question_marks_and_sunday_as_one() {
        let s = Schedule::parse("cron(0 2 ? * SUN *)", None, MIN).unwrap();
        // 2026-11-27 is a Friday: next Sunday 29th at 02:00 UTC.
        assert_eq!(next(&s, "2026-11-27T10:00:00Z"), "2026-11-29T02:00:00Z");
        let one = Schedule::parse("cron(0 2 ? * 1 *)", None, MIN).unwrap();
        assert_eq!(next(&one, "2026-11-27T10:00:00Z"), "2026-11-29T02:00:00Z", "1 is Sunday in AWS");
        let plain = Schedule::parse("0 2 * * 0", None, MIN).unwrap();
        assert_eq!(next(&plain, "2026-11-27T10:00:00Z"), "2026-11-29T02:00:00Z", "0 is Sunday in cron");
        let weekdays = Schedule::parse("cron(30 9 ? * MON-FRI *)", None, MIN).unwrap();
        assert_eq!(next(&weekdays, "2026-11-27T10:00:00Z"), "2026-11-30T09:30:00Z");
        assert!(Schedule::parse("cron(0 2 * *)", None, MIN).is_err());
        assert!(Schedule::parse("cron(0 25 ? * * *)", None, MIN).is_err());
        assert!(Schedule::parse("every day", None, MIN).is_err());
    }

    #[test]
    fn cron_follows_the_time_zone_across_dst() {
        // 02:00 Paris time: 01:00Z in winter, 00:00Z in summer.
        let s = Schedule::parse("cron(0 2 ? * * *)", Some("Europe/Paris"), MIN).unwrap();
        assert_eq!(next(&s, "2026-01-10T12:00:00Z"), "2026-01-11T01:00:00Z");
        assert_eq!(next(&s, "2026-07-10T12:00:00Z"), "2026-07-11T00:00:00Z");
        // 2026-03-29 02:00 does not exist in Paris (clocks go 02:00 → 03:00):
        // the run is at the first instant after the gap, 03:00 CEST = 01:00Z.
        assert_eq!(next(&s, "2026-03-28T12:00:00Z"), "2026-03-29T01:00:00Z");
        // 2026-10-25 02:30 happens twice in Paris: once only, the first time.
        let half = Schedule::parse("cron(30 2 ? * * *)", Some("Europe/Paris"), MIN).unwrap();
        let first = half.next_after(ts("2026-10-24T12:00:00Z"), ts("2026-01-01T00:00:00Z")).unwrap();
        assert_eq!(first.to_string(), "2026-10-25T00:30:00Z");
        assert_eq!(next(&half, &first.to_string()), "2026-10-26T01:30:00Z", "not again an hour later");
        assert!(Schedule::parse("cron(0 2 ? * * *)", Some("Mars/Olympus"), MIN).is_err());
    }

    #[test]
    fn rate_counts_from_the_anchor_and_has_a_floor() {
        let s = Schedule::parse("rate(30 minutes)", None, MIN).unwrap();
        let anchor = ts("2026-01-01T00:10:00Z");
        assert_eq!(s.next_after(ts("2026-01-01T00:00:00Z"), anchor), Some(anchor));
        assert_eq!(s.next_after(anchor, anchor), Some(ts("2026-01-01T00:40:00Z")));
        assert_eq!(s.next_after(ts("2026-01-01T00:41:00Z"), anchor), Some(ts("2026-01-01T01:10:00Z")));
        let e = Schedule::parse("rate(5 minutes)", None, Duration::from_secs(1800)).unwrap_err();
        assert!(e.to_string().contains("at least every 30m"), "{e}");
        assert!(Schedule::parse("rate(2 fortnights)", None, MIN).is_err());
    }

    #[test]
    fn at_runs_once_in_its_zone() {
        let s = Schedule::parse("at(2026-12-01T02:00:00)", Some("America/New_York"), MIN).unwrap();
        assert_eq!(next(&s, "2026-11-27T00:00:00Z"), "2026-12-01T07:00:00Z");
        assert_eq!(next(&s, "2026-12-01T07:00:00Z"), "");
        let z = Schedule::parse("at(2026-12-01T02:00:00Z)", Some("America/New_York"), MIN).unwrap();
        assert_eq!(next(&z, "2026-11-27T00:00:00Z"), "2026-12-01T02:00:00Z");
    }

    #[test]
    fn downtime_gives_one_catch_up_run_and_runs_never_overlap() {
        let anchor = ts("2026-01-01T00:00:00Z");
        let hourly = Schedule::parse("rate(1 hour)", None, MIN).unwrap();
        // A new association runs at once (its anchor slot).
        let d = hourly.due(None, anchor, ts("2026-01-01T00:00:05Z"), false);
        assert_eq!((d.run, d.skipped), (Some(anchor), 0));
        // Last ran at 01:00; the server was down until 05:30: one run, for 05:00.
        let d = hourly.due(Some(ts("2026-01-01T01:00:00Z")), anchor, ts("2026-01-01T05:30:00Z"), false);
        assert_eq!(d.run, Some(ts("2026-01-01T05:00:00Z")));
        assert_eq!(d.skipped, 3, "02:00, 03:00 and 04:00 are covered by that one run");
        assert_eq!(d.next, Some(ts("2026-01-01T06:00:00Z")));
        // Nothing due yet.
        let d = hourly.due(Some(ts("2026-01-01T05:00:00Z")), anchor, ts("2026-01-01T05:59:59Z"), false);
        assert_eq!(d.run, None);
        // Still running when 06:00 comes: skipped, not queued.
        let d = hourly.due(Some(ts("2026-01-01T05:00:00Z")), anchor, ts("2026-01-01T06:00:01Z"), true);
        assert_eq!((d.run, d.skipped), (None, 1));
        // A cron schedule after a week's downtime: one run.
        let nightly = Schedule::parse("cron(0 2 ? * * *)", None, MIN).unwrap();
        let d = nightly.due(Some(ts("2026-02-01T02:00:00Z")), anchor, ts("2026-02-08T12:00:00Z"), false);
        assert_eq!((d.run, d.skipped), (Some(ts("2026-02-08T02:00:00Z")), 6));
        // A fine rate after a year away still decides quickly, with one run.
        let fine = Schedule::parse("rate(1 minute)", None, MIN).unwrap();
        let d = fine.due(Some(anchor), anchor, ts("2027-01-01T00:00:30Z"), false);
        assert_eq!(d.run, Some(ts("2027-01-01T00:00:00Z")));
    }
}
