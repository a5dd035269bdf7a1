"""Make the long real-speech recordings in this folder (run once; the results are committed).

Each recording is a shuffled selection of the sentences below, spoken by Festival's
``cmu_us_slt_arctic_hts`` voice (``apt-get install -y festival festvox-us-slt-hts``), joined by
pauses of varied length: many short ones (0.1-0.35 s), which leave a splitter no real pause
near a planned cut, so cuts fall inside speech, and some long ones (up to 2.5 s). The third
recording has background noise (office hum and pink-ish noise) mixed in with numpy. Written as
Ogg/Opus at 24 kbit/s through PyAV (a few hundred KB per minute), each with ``<name>.txt``, the
text that was spoken, one sentence per line.

Usage: ``python tests/data/long/make_recordings.py`` (takes a few minutes of CPU).
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import tempfile
import wave
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
RATE = 16_000

SENTENCES = [
    "Thank you for calling customer service, my name is Sarah, how can I help you today?",
    "I would like to check the status of my order, it has not arrived yet.",
    "Could you please confirm the email address on your account?",
    "The delivery was scheduled for Monday morning, but nobody came to the door.",
    "I am sorry to hear that, let me look into it for you right away.",
    "Your parcel left our warehouse on Friday and is now with the courier.",
    "Let us review the budget report before the end of the quarter.",
    "Please send the meeting notes to the whole team after lunch.",
    "The marketing department wants to move the launch to the spring.",
    "We need a decision on the new office lease by the end of the week.",
    "Can everyone hear me clearly, or should I move closer to the microphone?",
    "The first item on the agenda is the customer satisfaction survey.",
    "Most of the complaints were about long waiting times on the phone.",
    "I think we should hire two more support agents for the evening shift.",
    "The refund will appear on your statement within five working days.",
    "Is there anything else I can help you with this afternoon?",
    "My internet connection keeps dropping every evening around dinner time.",
    "Have you tried restarting the router and unplugging it for a minute?",
    "I have already done that twice, and the problem is still there.",
    "In that case I will book a technician to visit your home.",
    "The technician can come on Thursday between nine and noon.",
    "That works for me, thank you for sorting this out so quickly.",
    "Our sales figures for the northern region were better than expected.",
    "The southern region is still behind, mainly because of the weather.",
    "We should compare these numbers with the same period last year.",
    "I will prepare a short presentation for the board meeting.",
    "Please remember that the deadline for expense reports is tomorrow.",
    "The new software update fixes the problem with printing invoices.",
    "Some customers have asked for an option to pay in monthly instalments.",
    "Legal has to approve the contract before we can sign anything.",
    "The training session for new employees starts next Tuesday.",
    "I am calling because I was charged twice for the same subscription.",
    "I can see both payments here, and I will cancel the second one now.",
    "You should receive a confirmation message in the next few minutes.",
    "The warehouse team is working overtime to clear the backlog.",
    "We are running low on packaging material and need to reorder soon.",
    "Could we schedule a follow up call with the supplier next week?",
    "The supplier promised to lower their prices if we sign for two years.",
    "I am not sure that a long contract is a good idea right now.",
    "Let us take a short break and continue in ten minutes.",
    "Welcome back everyone, let us pick up where we left off.",
    "The next topic is the holiday schedule for the support team.",
    "Every team member should enter their vacation plans in the calendar.",
    "We cannot have more than two people away at the same time.",
    "My account was locked after I entered the wrong password three times.",
    "For security reasons I need to ask you a few questions first.",
    "What is the name of the street where you lived as a child?",
    "Thank you, your account is unlocked and you can sign in again.",
    "The quality team listened to a sample of recorded calls last month.",
    "They found that agents often forget to summarise the next steps.",
    "A clear summary at the end of every call saves time for everybody.",
    "I would like to upgrade my plan to include international calls.",
    "The premium plan includes calls to most European countries.",
    "The change will take effect from the start of your next billing cycle.",
    "Our website was slow yesterday because of a problem with the database.",
    "The engineers restored the service late in the evening.",
    "We will publish a report explaining what happened and what we changed.",
    "Customers who were affected will receive a discount on their next bill.",
    "Does anyone have questions about the project timeline?",
    "I am worried that the testing phase is too short.",
    "We could ask the design team to finish their part a week earlier.",
    "That would give the testers enough time to find the remaining bugs.",
    "Let me check with the design lead and get back to you today.",
    "The new phone system will be installed over the weekend.",
    "On Monday every agent will get a new headset and a short guide.",
    "Please log out of all your sessions before leaving on Friday.",
    "The parcel was damaged, and the screen of the tablet is broken.",
    "Please keep the box, a courier will collect it on Wednesday.",
    "We will send you a replacement as soon as we receive the damaged item.",
    "I really appreciate your patience while we fixed this problem.",
    "Before we finish, let us agree on the action items from today.",
    "Anna will update the forecast, and David will call the supplier.",
    "I will write a summary and share it with everyone this evening.",
    "Thank you all for your time, see you at the same time next week.",
    "Have a lovely day, and thank you for being a loyal customer.",
]

RECORDINGS = {  # name: (seed, sentences, noise)
    "support-calls": (11, 71, False),
    "team-meeting": (23, 74, False),
    "noisy-office": (37, 72, True),
}


def synthesise(text: str, cache: Path) -> np.ndarray:
    """One sentence as float32 samples at 16 kHz (Festival slt-hts), trimmed of edge silence."""
    wav = cache / f"{hashlib.sha1(text.encode()).hexdigest()}.wav"
    if not wav.exists():
        subprocess.run(
            ["text2wave", "-F", str(RATE), "-o", str(wav), "-eval", "(voice_cmu_us_slt_arctic_hts)"],
            input=text.encode(),
            check=True,
        )
    with wave.open(str(wav)) as handle:
        samples = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").astype(np.float32)
    loud = np.flatnonzero(np.abs(samples) > 300)
    return samples[max(0, loud[0] - 800) : loud[-1] + 800] / 32768.0


def pause(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.45:
        return rng.uniform(0.1, 0.35)  # hardly a pause: cuts near here fall inside speech
    if roll < 0.85:
        return rng.uniform(0.4, 1.0)
    return rng.uniform(1.2, 2.5)


def background(length: int, seed: int) -> np.ndarray:
    """Office noise: a 50 Hz hum with harmonics and low-passed random noise, slowly swelling."""
    gen = np.random.default_rng(seed)
    t = np.arange(length) / RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3))
    noise = np.convolve(gen.standard_normal(length), np.ones(8) / 8, mode="same")
    swell = 0.7 + 0.3 * np.sin(2 * np.pi * t / 37.0)
    return (0.01 * hum + 0.05 * noise * swell).astype(np.float32)


def write_opus(path: Path, samples: np.ndarray) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48_000, layout="mono")
        stream.bit_rate = 24_000
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)
        for first in range(0, len(pcm), RATE):
            frame = av.AudioFrame.from_ndarray(
                pcm[first : first + RATE][None, :], format="s16", layout="mono"
            )
            frame.sample_rate = RATE
            for resampled in resampler.resample(frame):
                out.mux(stream.encode(resampled))
        for resampled in resampler.resample(None):
            out.mux(stream.encode(resampled))
        out.mux(stream.encode(None))


def main() -> None:
    cache = Path(tempfile.gettempdir()) / "festival-slt-sentences"
    cache.mkdir(exist_ok=True)
    for name, (seed, count, noisy) in RECORDINGS.items():
        rng = random.Random(seed)
        chosen = rng.sample(SENTENCES, count)
        parts = [np.zeros(int(0.5 * RATE), dtype=np.float32)]
        for text in chosen:
            parts.append(synthesise(text, cache))
            parts.append(np.zeros(int(pause(rng) * RATE), dtype=np.float32))
        samples = np.concatenate(parts)
        if noisy:
            samples = samples + background(len(samples), seed)
        write_opus(HERE / f"{name}.ogg", samples)
        (HERE / f"{name}.txt").write_text("\n".join(chosen) + "\n")
        print(f"{name}: {len(samples) / RATE:.0f} s, {len(chosen)} sentences")


if __name__ == "__main__":
    main()
