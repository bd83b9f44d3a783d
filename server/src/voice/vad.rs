//! *Pure.* The speech detector behind `input_audio_buffer.speech_started` / `speech_stopped`.
//!
//! Input is a sequence of `(time_ms, level)` samples, one per incoming audio packet, where
//! `level` is the RFC 6464 audio level: 0..=127 in -dBov, so **lower is louder** and 127 is
//! silence. A sample is *loud* when `level <= threshold`. With hysteresis on both edges:
//!
//! - speech **starts** once samples have stayed loud for at least `min_speech_ms` (one quiet
//!   sample resets the run, so a click shorter than that never starts speech);
//!   `audio_start_ms` is where that loud run began, minus `prefix_padding_ms` (OpenAI reports the
//!   start of the audio it keeps, padding included);
//! - speech **stops** once no loud sample has come for at least `silence_duration_ms` (short
//!   pauses between words keep it going); `audio_end_ms` is the moment that silence completed, as
//!   OpenAI's includes the silence duration. Missing packets count as silence: [`Vad::idle`]
//!   lets the caller close speech on a clock tick when packets stop arriving altogether.

/// The detector's settings (OpenAI's `server_vad` defaults where they have a counterpart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VadConfig {
    /// Levels at or below this (-dBov) count as loud. 50 means "louder than -50 dBov".
    pub threshold: u8,
    /// How long levels must stay loud before speech starts.
    pub min_speech_ms: u64,
    /// How long without a loud sample before speech stops.
    pub silence_duration_ms: u64,
    /// Subtracted from the start of the loud run in `audio_start_ms`.
    pub prefix_padding_ms: u64,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            threshold: 50,
            min_speech_ms: 100,
            silence_duration_ms: 500,
            prefix_padding_ms: 300,
        }
    }
}

/// What the detector saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech began; milliseconds on the caller's clock, padding included.
    SpeechStarted {
        /// Start of the kept audio.
        audio_start_ms: u64,
    },
    /// Speech ended.
    SpeechStopped {
        /// When the silence that ended it completed.
        audio_end_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No speech; `loud_since` is the start of the current loud run, if any.
    Quiet { loud_since: Option<u64> },
    /// Speech; `last_loud` is the time of the latest loud sample.
    Speaking { last_loud: u64 },
}

/// The detector: feed it samples in time order.
#[derive(Debug, Clone)]
pub struct Vad {
    config: VadConfig,
    state: State,
}

impl Vad {
    /// A detector in the quiet state.
    pub fn new(config: VadConfig) -> Self {
        Self {
            config,
            state: State::Quiet { loud_since: None },
        }
    }

    /// The settings.
    pub fn config(&self) -> VadConfig {
        self.config
    }

    /// Replaces the settings (after a `session.update`), keeping the current state.
    pub fn set_config(&mut self, config: VadConfig) {
        self.config = config;
    }

    /// Whether speech is going on.
    pub fn is_speaking(&self) -> bool {
        matches!(self.state, State::Speaking { .. })
    }

    /// One sample: `level` (-dBov, 0 loudest, 127 silence; larger values count as 127) at
    /// `t_ms`. Returns the event it completes, if any.
    pub fn push(&mut self, t_ms: u64, level: u8) -> Option<VadEvent> {
        let loud = level.min(127) <= self.config.threshold;
        match self.state {
            State::Quiet { loud_since } => {
                if !loud {
                    self.state = State::Quiet { loud_since: None };
                    return None;
                }
                let since = loud_since.unwrap_or(t_ms);
                if t_ms.saturating_sub(since) >= self.config.min_speech_ms {
                    self.state = State::Speaking { last_loud: t_ms };
                    Some(VadEvent::SpeechStarted {
                        audio_start_ms: since.saturating_sub(self.config.prefix_padding_ms),
                    })
                } else {
                    self.state = State::Quiet {
                        loud_since: Some(since),
                    };
                    None
                }
            }
            State::Speaking { last_loud } => {
                // A gap longer than the silence duration ended speech before this sample.
                if let Some(stop) = self.idle(t_ms) {
                    if loud {
                        self.state = State::Quiet {
                            loud_since: Some(t_ms),
                        };
                    }
                    return Some(stop);
                }
                if loud {
                    self.state = State::Speaking {
                        last_loud: t_ms.max(last_loud),
                    };
                }
                None
            }
        }
    }

    /// A clock tick with no sample: ends speech when the silence has lasted long enough.
    pub fn idle(&mut self, now_ms: u64) -> Option<VadEvent> {
        let State::Speaking { last_loud } = self.state else {
            return None;
        };
        let end = last_loud + self.config.silence_duration_ms;
        if now_ms < end {
            return None;
        }
        self.state = State::Quiet { loud_since: None };
        Some(VadEvent::SpeechStopped { audio_end_ms: end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOUD: u8 = 20; // -20 dBov: a voice close to the microphone
    const QUIET: u8 = 127; // digital silence
    const NOISE: u8 = 70; // room noise, below the threshold

    /// Feeds `(duration_ms, level)` segments as 20 ms packets from t = 0; returns every event.
    fn run(vad: &mut Vad, segments: &[(u64, u8)]) -> Vec<VadEvent> {
        let mut t = 0;
        let mut events = Vec::new();
        for &(duration, level) in segments {
            let end = t + duration;
            while t < end {
                events.extend(vad.push(t, level));
                t += 20;
            }
        }
        events
    }

    fn started(ms: u64) -> VadEvent {
        VadEvent::SpeechStarted { audio_start_ms: ms }
    }

    fn stopped(ms: u64) -> VadEvent {
        VadEvent::SpeechStopped { audio_end_ms: ms }
    }

    #[test]
    fn a_tone_burst_starts_and_silence_stops() {
        let mut vad = Vad::new(VadConfig::default());
        // 1 s silence, 1 s tone, 1 s silence.
        let events = run(&mut vad, &[(1000, QUIET), (1000, LOUD), (1000, QUIET)]);
        // Loud from 1000; confirmed at 1100; reported from 1000 - 300 padding.
        // Last loud sample at 1980; 500 ms later speech is over.
        assert_eq!(events, [started(700), stopped(2480)]);
        assert!(!vad.is_speaking());
    }

    #[test]
    fn short_clicks_never_start_speech() {
        let mut vad = Vad::new(VadConfig::default());
        // 60 ms clicks (3 packets) every 200 ms, with quiet in between.
        let mut segments = Vec::new();
        for _ in 0..20 {
            segments.push((60, LOUD));
            segments.push((140, QUIET));
        }
        assert_eq!(run(&mut vad, &segments), []);
        assert!(!vad.is_speaking());
    }

    #[test]
    fn noise_below_the_threshold_is_silence() {
        let mut vad = Vad::new(VadConfig::default());
        assert_eq!(run(&mut vad, &[(3000, NOISE)]), []);
        // At exactly the threshold it is loud.
        let mut vad = Vad::new(VadConfig::default());
        assert_eq!(run(&mut vad, &[(200, 50)]), [started(0)]);
    }

    #[test]
    fn pauses_shorter_than_the_silence_duration_keep_speech_going() {
        let mut vad = Vad::new(VadConfig::default());
        // Words with 300 ms pauses: one utterance.
        let events = run(
            &mut vad,
            &[
                (400, LOUD),
                (300, QUIET),
                (400, LOUD),
                (300, QUIET),
                (400, LOUD),
                (1000, QUIET),
            ],
        );
        // Last loud packet at 1780.
        assert_eq!(events, [started(0), stopped(2280)]);
    }

    #[test]
    fn two_utterances_give_two_pairs() {
        let mut vad = Vad::new(VadConfig::default());
        let events = run(
            &mut vad,
            &[(500, LOUD), (800, QUIET), (500, LOUD), (800, QUIET)],
        );
        // Second burst loud from 1300; padding 300 → 1000. Last loud at 1780 → 2280.
        assert_eq!(
            events,
            [started(0), stopped(980), started(1000), stopped(2280)]
        );
    }

    #[test]
    fn missing_packets_count_as_silence() {
        let mut vad = Vad::new(VadConfig::default());
        assert_eq!(run(&mut vad, &[(400, LOUD)]), [started(0)]);
        // No packets: a tick before the silence duration does nothing, after it stops.
        assert_eq!(vad.idle(800), None);
        assert_eq!(vad.idle(900), Some(stopped(880)));
        assert_eq!(vad.idle(2000), None);
        // A packet after a long gap also closes the old speech first.
        let mut vad = Vad::new(VadConfig::default());
        run(&mut vad, &[(400, LOUD)]);
        assert_eq!(vad.push(5000, LOUD), Some(stopped(880)));
        // ...and that loud packet begins a new run.
        assert_eq!(vad.push(5100, LOUD), Some(started(4700)));
    }

    #[test]
    fn settings_change_the_edges() {
        let config = VadConfig {
            threshold: 40,
            min_speech_ms: 40,
            silence_duration_ms: 200,
            prefix_padding_ms: 0,
        };
        let mut vad = Vad::new(config);
        assert_eq!(vad.config(), config);
        // 45 is quieter than the threshold of 40.
        assert_eq!(run(&mut vad, &[(500, 45)]), []);
        let mut vad = Vad::new(config);
        let events = run(&mut vad, &[(100, 30), (300, QUIET)]);
        assert_eq!(events, [started(0), stopped(280)]);
    }

    #[test]
    fn out_of_range_levels_clamp_to_127() {
        let mut vad = Vad::new(VadConfig {
            threshold: 127,
            ..VadConfig::default()
        });
        // Levels past 127 read as 127 (silence), which a threshold of 127 still counts as loud.
        assert_eq!(vad.push(0, 255), None);
        assert_eq!(vad.push(100, 200), Some(started(0)));
    }
}
