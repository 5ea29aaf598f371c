"""Versions of every scoring stage, recorded with each published score so validators recompute alike."""

from __future__ import annotations

from scoring.catalog import CATALOG_VERSION
from scoring.decode import DECODER_VERSION
from scoring.features import FEATURE_VERSION
from scoring.fingerprint import FINGERPRINT_VERSION
from scoring.intervals import interval_model_digest
from scoring.novelty import NOVELTY_VERSION, load_coherence_model, load_reference
from scoring.quality import QUALITY_VERSION
from scoring.structure import harmony_model_digest

MODEL_VERSION: int = 15
"""u32 published on chain with each score; bumped whenever a formula, threshold or reference data changes
(2: structural novelty with the learned coherence, quality v2, the composition-matching derivative gate;
3: features 3 with melodic motion and salience steps for the gate, coherence model 3 without the voiced
share, catalogue 3; 4: the derivative gate aligns bass and treble profiles, ami-derivative/3, catalogue 4;
5: the gate's 30 s window with a threshold that falls with the window, ami-derivative/4, catalogue 4;
6: coherence model 4, refitted on a larger training split (17 more soundtrack files, 6 more reels and
jigs, a second draw of random notes); catalogue 4; 7: features 4 with beat-to-beat continuity of the
pitch content (voice leading), coherence model 5 with it as a 13th input; catalogue 4; 8: the derivative
gate also asks the matched window to share the motion, ami-derivative/5, catalogue 4; 9: features 5, whose
melody clarity test no longer counts a candidate a fifth or fourth away, which shares its partials, as a
rival; coherence model 6 refitted on them; catalogue 4; 10: features 6, whose melody holds a note through
hops to its partials and counts the leaps that surprise the piece's and a folksong corpus' interval
models (`scoring.intervals`, interval model ami-intervals/1); coherence model 7 takes that share in place
of every leap's; catalogue 4; 11: features 7 also read the harmony from the upper voices' chroma (C3 up),
and novelty ami-novelty/3 lets the clearer of the two views count, so a loud bass cannot hide the chords;
coherence model 7 unchanged; catalogue 4; 12: features 8 measure the seconds of pitched material, and
novelty ami-novelty/4 pays in proportion to it from 8 to 20 s, so a short clip, or one padded with
silence or noise, cannot read as composed; catalogue 4; 13: features 9 count as evidence only the pitched
seconds that show harmony (a chord's first seconds, no lone partial), and novelty ami-novelty/5 reads
that evidence per harmony view, so a clip padded with a held chord, a sine or a sweep cannot read as
composed either; catalogue 4; 14: features 10 read a loop of two to four chords, cycled three times or
more with each chord held 1 s or longer, as one held harmony for evidence, so a clip padded with a slow
vamp cannot read as composed; novelty ami-novelty/5 unchanged; catalogue 4; 15: features 11 also read a
loop cycled twice as one held harmony when no melody note begins inside its chords, so a clip padded with a
slow loop of three or four chords cannot read as composed; novelty ami-novelty/5 unchanged; catalogue 4)."""

SCORE_VERSION = "ami-score/2"
"""Version of the published score record and of its commitment encoding (`scoring.engine.commitment`;
2: no features digest in the commitment, identity-based catalogue root; ami-agreement/1)."""


def versions() -> dict[str, str]:
    """Every component version, as strings, keyed by stage."""
    return {
        "model": str(MODEL_VERSION),
        "score": SCORE_VERSION,
        "decoder": DECODER_VERSION,
        "features": FEATURE_VERSION,
        "fingerprint": FINGERPRINT_VERSION,
        "catalog": CATALOG_VERSION,
        "novelty": NOVELTY_VERSION,
        "quality": QUALITY_VERSION,
        "genre_reference": load_reference().digest,
        "harmony_model": harmony_model_digest(),
        "interval_model": interval_model_digest(),
        "coherence_model": load_coherence_model().digest,
    }
