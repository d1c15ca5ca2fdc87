"""Synthetic stand-ins for the private swimming clips and for UTKFace, generated offline.

The swimming data set is private and UTKFace cannot be downloaded here, yet every stage of
edgekit (training, QAT, conversion, the camera runner) needs data with the same *structure*:

* swimmer **identity is visible in any single frame** (cap colour, suit colour, skin tone, build),
  and stays recognisable under lighting jitter;
* swimmer **action is only visible over time**: every frame-level distribution (position, pose,
  head above/under water, splash) is the same for all actions because each periodic pose variable
  is driven by a uniformly random phase; what differs is *how things change*: freestyle crosses
  the frame fast and steadily with fast alternating kicks, breaststroke surges and glides with the
  head dipping once per stroke, drowning bobs up and down in place with irregular splashing, safe
  barely drifts.

So a model that solves the synthetic task must use its temporal block, like on the real data.
Everything is rendered with vectorised numpy over (frames, height, width); one ``numpy`` Generator
seeded by ``seed`` drives every random draw, so the same seed gives the same frames.
"""

import datetime
import os

import cv2
import numpy as np

from edge.atomic import write_bytes, write_json
from edge.clipnames import format_clip_name, parse_clip_name
from edge.errors import EdgekitError
from edge.video import FOURCC_BY_SUFFIX, write_video
from quantize.data.clips import ClipLabels, LABELS_FILE
from quantize.data.utkface import GENDERS, RACES, parse_utkface_name

ACTIONS = ["breaststroke", "drowning", "freestyle", "safe"]
MARKER_FILE = ".synthetic.json"
# Speeds are specified for the seed's 15-frame clips (14 steps) and applied per frame, so shorter
# or longer clips show the same motion over a shorter or longer time.
REF_STEPS = 14.0
_TWO_PI = 2.0 * np.pi

# Hand-picked looks for the first swimmers: (cap RGB, suit RGB, skin RGB). Hues are far apart so
# lighting gain/colour cast never makes two swimmers alike; more swimmers get generated looks.
_LOOKS = [
    ((235, 35, 35), (25, 25, 25), (225, 180, 150)),
    ((250, 225, 40), (150, 20, 40), (140, 95, 65)),
    ((245, 245, 245), (20, 120, 45), (200, 150, 110)),
    ((255, 130, 0), (95, 30, 140), (240, 200, 175)),
    ((230, 40, 210), (60, 60, 60), (170, 120, 85)),
    ((40, 210, 70), (140, 70, 20), (230, 190, 160)),
]


def swimmer_look(index):
    """Appearance of swimmer ``index`` (0-based), independent of the seed.

    Fixed per identity so clips generated with different seeds (e.g. a separate test set) show
    the same four swimmers. Returns a dict of RGB colours and body proportions.
    """
    if index < len(_LOOKS):
        cap, suit, skin = _LOOKS[index]
    else:
        hue = int((index * 0.618034 % 1.0) * 180)
        hsv = np.array([[[hue, 230, 240], [(hue + 90) % 180, 200, 120]]], dtype=np.uint8)
        cap, suit = [tuple(int(c) for c in rgb) for rgb in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]]
        skin = _LOOKS[index % len(_LOOKS)][2]
    # Body length (fraction of width) 0.20..0.30 and thickness (fraction of height) 0.08..0.13.
    length = 0.20 + 0.10 * ((index * 0.381966 + 0.15) % 1.0)
    thickness = 0.08 + 0.05 * ((index * 0.618034 + 0.55) % 1.0)
    return {"cap": np.array(cap, np.float32), "suit": np.array(suit, np.float32),
            "skin": np.array(skin, np.float32), "length": length, "thickness": thickness}


def _motion(rng, action, frames):
    """Per-frame trajectory and pose phases of one clip (all arrays of shape (frames,)).

    Returns forward displacement (fraction of width), vertical centre (fraction of height) and
    the phases driving head visibility, kick splash and arm angle.
    """
    t = np.arange(frames, dtype=np.float64)
    if action == "freestyle":
        disp = rng.uniform(0.50, 0.70) / REF_STEPS * t
        y = rng.uniform(0.28, 0.72) + 0.01 * np.sin(_TWO_PI * t / rng.uniform(4, 7) + rng.uniform(0, _TWO_PI))
        dip = _TWO_PI * t / rng.uniform(4, 6)
        kick = _TWO_PI * t / rng.uniform(2.2, 3.0)
        arm = _TWO_PI * t / rng.uniform(4, 6)
    elif action == "breaststroke":
        period = rng.uniform(4.5, 6.5)
        cycle = t / period + rng.uniform(0, 1)
        # Surge then glide inside every stroke: progress 1 - (1 - u)^3 of one stroke length.
        progress = np.floor(cycle) + 1.0 - (1.0 - (cycle % 1.0)) ** 3
        step = rng.uniform(0.25, 0.35) * period / REF_STEPS
        disp = step * (progress - progress[0])
        y = rng.uniform(0.28, 0.72) + 0.015 * np.sin(_TWO_PI * cycle)
        dip = kick = arm = _TWO_PI * cycle
    elif action == "drowning":
        phase = _TWO_PI * t / rng.uniform(5, 8) + rng.uniform(0, _TWO_PI)
        disp = rng.uniform(-0.03, 0.03) / REF_STEPS * t
        y = rng.uniform(0.37, 0.63) + rng.uniform(0.10, 0.15) * np.sin(phase)
        dip = phase + np.pi / 2  # head goes under on the way down
        # Flailing: fast, irregular kicks and arm swings.
        kick = np.cumsum(rng.uniform(0.3, 1.2, frames) * np.pi)
        arm = np.cumsum(rng.uniform(0.3, 1.2, frames) * np.pi)
    elif action == "safe":
        disp = rng.uniform(0.005, 0.04) / REF_STEPS * t
        y = rng.uniform(0.28, 0.72) + 0.01 * np.sin(_TWO_PI * t / rng.uniform(8, 14) + rng.uniform(0, _TWO_PI))
        dip = _TWO_PI * t / rng.uniform(20, 30)
        kick = _TWO_PI * t / rng.uniform(12, 20)
        arm = _TWO_PI * t / rng.uniform(15, 25)
    else:
        raise EdgekitError("unknown synthetic action %r; known: %s" % (action, ", ".join(ACTIONS)))
    # A uniformly random phase offset makes every pose variable's single-frame distribution the
    # same for all actions; only the rate and regularity of change tell actions apart.
    dip = dip + rng.uniform(0, _TWO_PI)
    kick = kick + rng.uniform(0, _TWO_PI)
    arm = arm + rng.uniform(0, _TWO_PI)
    return disp, y, dip, kick, arm


def _soft_ellipse(xs, ys, cx, cy, ax, ay):
    """Anti-aliased ellipse coverage (T, H, W) for per-frame centres cx, cy (pixels)."""
    dx = (xs[None, None, :] - cx[:, None, None]) / ax
    dy = (ys[None, :, None] - cy[:, None, None]) / ay
    dist = np.sqrt(dx * dx + dy * dy)
    return np.clip((1.0 - dist) * min(ax, ay) + 0.5, 0.0, 1.0)


def _over(image, alpha, colour):
    """Composite a flat colour with per-pixel coverage ``alpha`` (T, H, W) onto ``image``."""
    # Blend only inside the bounding box of the shape: sprites cover a few % of the frame.
    covered = alpha > 0
    rows = np.flatnonzero(covered.any(axis=(0, 2)))
    cols = np.flatnonzero(covered.any(axis=(0, 1)))
    if rows.size == 0:
        return image
    box = (slice(None), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    a = alpha[box].astype(np.float32, copy=False)[..., None]
    image[box] += (np.asarray(colour, np.float32) - image[box]) * a
    return image


def render_swim_clip(rng, action, look, frames, height, width):
    """Render one clip as uint8 (frames, height, width, 3) RGB."""
    disp, y, dip, kick, arm = _motion(rng, action, frames)
    xs = np.arange(width, dtype=np.float32) + 0.5
    ys = np.arange(height, dtype=np.float32) + 0.5
    t = np.arange(frames, dtype=np.float32)

    # Random start and direction, chosen so the whole path stays inside [0.12, 0.88] when it can.
    lo, hi = 0.12 - min(disp.min(), 0.0), 0.88 - max(disp.max(), 0.0)
    start = rng.uniform(lo, hi) if hi > lo else 0.12
    direction = float(rng.choice([-1.0, 1.0]))
    forward = start + disp
    cx_frac = forward if direction > 0 else 1.0 - forward
    shake = rng.normal(0.0, 0.006, size=(2, frames))  # hand-held camera / mount vibration
    cx = ((cx_frac + shake[0]) * width).astype(np.float32)
    cy = ((y + shake[1]) * height).astype(np.float32)

    # Pool: vertical blue gradient, moving ripples, lane ropes at the top and bottom.
    top = np.array([60, 160, 215], np.float32) + rng.normal(0, 8, 3).astype(np.float32)
    bottom = np.array([15, 85, 165], np.float32) + rng.normal(0, 8, 3).astype(np.float32)
    grad = top + (bottom - top) * (ys / height)[:, None]  # (H, 3) float32
    ripples = np.zeros((frames, height, width), np.float32)
    for _ in range(2):  # two wave trains (a loop over 2 waves, not over pixels)
        fx, fy, speed, phase = (np.float32(v) for v in (
            rng.uniform(1.5, 4.0), rng.uniform(-3.0, 3.0), rng.uniform(0.5, 1.2), rng.uniform(0, _TWO_PI)))
        ripples += 0.5 * np.sin(_TWO_PI * (fx * xs[None, None, :] / width + fy * ys[None, :, None] / height)
                                + speed * t[:, None, None] + phase)
    image = grad[None, :, None, :] * (1.0 + 0.12 * ripples[..., None])  # (T, H, W, 3) float32
    rope_offset = rng.uniform(0, 1)
    floats = (np.floor(xs / max(width * 0.06, 1.0) + rope_offset * 2) % 2)[None, None, :, None]
    rope_colour = floats * np.array([235, 235, 235], np.float32) + (1 - floats) * np.array([200, 40, 40], np.float32)
    half = np.float32(max(0.02 * height, 0.6))
    for rope_y in (rng.uniform(0.03, 0.10), rng.uniform(0.90, 0.97)):
        centre = ((rope_y + shake[1]) * height).astype(np.float32)
        alpha = np.clip(half + 0.5 - np.abs(ys[None, :] - centre[:, None]), 0.0, 1.0)  # (T, H)
        rows = np.flatnonzero((alpha > 0).any(axis=0))
        if rows.size == 0:
            continue
        band = image[:, rows[0]:rows[-1] + 1]
        band += (rope_colour - band) * alpha[:, rows[0]:rows[-1] + 1, None, None]

    # Swimmer: suit body, arm, cap (fading when the head dips under), splash at the feet.
    ax = look["length"] * width / 2.0
    ay = look["thickness"] * height / 2.0
    head_r = max(ay * 1.15, 0.8)
    image = _over(image, 0.9 * _soft_ellipse(xs, ys, cx, cy, ax, ay), look["suit"])
    arm_x = cx + direction * ax * (0.35 + 0.45 * np.cos(arm)).astype(np.float32)
    arm_y = cy + (ay * 1.6 * np.sin(arm)).astype(np.float32)
    image = _over(image, 0.85 * _soft_ellipse(xs, ys, arm_x, arm_y, max(ax * 0.3, 0.7), max(ay * 0.45, 0.6)),
                  look["skin"])
    visible = (0.25 + 0.75 * (0.5 + 0.5 * np.cos(dip))).astype(np.float32)
    head_x = cx + direction * (ax + head_r * 0.6)
    image = _over(image, visible[:, None, None] * _soft_ellipse(xs, ys, head_x, cy, head_r, head_r),
                  look["cap"])
    splash_strength = (0.7 * np.abs(np.sin(kick))).astype(np.float32)
    splash_x = cx - direction * (ax * 1.05)
    splash_y = cy + (ay * 0.9 * np.cos(kick)).astype(np.float32)
    image = _over(image, splash_strength[:, None, None]
                  * _soft_ellipse(xs, ys, splash_x, splash_y, max(ax * 0.35, 0.8), max(ay * 0.9, 0.8)),
                  np.array([240, 248, 255], np.float32))

    # Camera: global gain (per clip and flickering per frame), colour cast, sensor noise.
    gain = (rng.uniform(0.8, 1.2) * rng.normal(1.0, 0.04, frames)).astype(np.float32)
    cast = rng.uniform(0.93, 1.07, 3).astype(np.float32)
    image *= gain[:, None, None, None] * cast
    image += 4.0 * rng.standard_normal(image.shape, dtype=np.float32)
    np.rint(image, out=image)
    return np.clip(image, 0, 255).astype(np.uint8)


def _parse_size(size):
    height, width = (int(v) for v in size)
    if height < 8 or width < 8:
        raise EdgekitError("synthetic frame size must be at least 8x8, got %dx%d" % (height, width))
    return height, width


def _prepare_out_dir(out_dir, is_ours, overwrite):
    """Create ``out_dir``; refuse to mix with existing data unless it is our own synthetic set.

    Files that look like data (``is_ours(name)``) are deleted before regenerating only when the
    folder carries our marker file or ``overwrite`` is set, so a real data set is never touched.
    """
    os.makedirs(out_dir, exist_ok=True)
    existing = [n for n in os.listdir(out_dir) if not n.startswith(".") and is_ours(n)]
    if not existing:
        return
    synthetic = os.path.isfile(os.path.join(out_dir, MARKER_FILE))
    if not (synthetic or overwrite):
        raise EdgekitError("%s already holds %d data files (e.g. %s) that were not generated by "
                           "edgekit; choose an empty --out folder or pass --overwrite"
                           % (out_dir, len(existing), existing[0]))
    for name in existing:
        os.remove(os.path.join(out_dir, name))


def _write_marker(out_dir, summary):
    write_json(os.path.join(out_dir, MARKER_FILE), summary)


def _is_clip_file(name):
    if name == LABELS_FILE:
        return True
    try:
        parse_clip_name(name)
        return True
    except EdgekitError:
        return False


def synthesize_swimmers(out_dir, clips_per_pair=6, frames=15, size=(100, 100), seed=0, fmt="avi",
                        identities=4, overwrite=False):
    """Write ``clips_per_pair`` clips for every (action, swimmer) pair plus labels.json.

    Files are ``<action>_swimmer<k>_<n>.<fmt>``. Returns a summary dict (counts, classes, size).
    """
    out_dir = os.fspath(out_dir)
    fmt = str(fmt).lower().lstrip(".")
    if "." + fmt not in FOURCC_BY_SUFFIX:
        raise EdgekitError("unknown video format %r; use avi or mp4" % fmt)
    if int(clips_per_pair) < 1 or int(frames) < 2 or int(identities) < 1:
        raise EdgekitError("clips_per_pair and identities must be >= 1 and frames >= 2 "
                           "(got %s, %s, %s)" % (clips_per_pair, identities, frames))
    height, width = _parse_size(size)
    names = ["swimmer%d" % (i + 1) for i in range(int(identities))]
    _prepare_out_dir(out_dir, _is_clip_file, overwrite)
    rng = np.random.default_rng(seed)
    count = 0
    for action in ACTIONS:
        for k, identity in enumerate(names):
            look = swimmer_look(k)
            for n in range(int(clips_per_pair)):
                clip = render_swim_clip(rng, action, look, int(frames), height, width)
                name = format_clip_name(action, identity, n, "." + fmt)
                write_video(os.path.join(out_dir, name), clip)
                count += 1
    ClipLabels(actions=list(ACTIONS), identities=names).save(out_dir)
    summary = {"kind": "swim", "out_dir": out_dir, "clips": count, "frames": int(frames),
               "size": [height, width], "format": fmt, "seed": int(seed),
               "actions": list(ACTIONS), "identities": names,
               "clips_per_pair": int(clips_per_pair)}
    _write_marker(out_dir, summary)
    return summary


# ---------------------------------------------------------------------------------------------
# Faces

_SKIN_BY_RACE = np.array([  # RGB skin tone per UTKFace race index
    [235, 200, 175],  # white
    [105, 70, 50],    # black
    [225, 185, 140],  # asian
    [170, 120, 85],   # indian
    [200, 155, 120],  # others
], np.float32)


def render_face(rng, age, gender, race, height, width):
    """One uint8 RGB face whose look follows the labels (tone ~ race, hair/jaw ~ gender, age cues)."""
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height
    X, Y = xs[None, :], ys[:, None]
    bg_a, bg_b = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    image = bg_a + (bg_b - bg_a) * Y[..., None] + 0 * X[..., None]
    cx, cy = 0.5 + rng.normal(0, 0.03), 0.52 + rng.normal(0, 0.03)
    rx = (0.30 if gender == 0 else 0.26) * rng.uniform(0.95, 1.05)  # wider jaw for men
    ry = 0.36 * rng.uniform(0.95, 1.05)
    greyness = np.clip((age - 30) / 50.0, 0.0, 1.0)
    hair = np.array([40, 28, 20], np.float32) * rng.uniform(0.7, 1.6)
    hair = hair * (1 - greyness) + np.array([200, 200, 200], np.float32) * greyness

    def ellipse(ex, ey, ax, ay):
        dist = np.sqrt(((X - ex) / ax) ** 2 + ((Y - ey) / ay) ** 2)
        return np.clip((1.0 - dist) * min(ax, ay) * min(height, width) + 0.5, 0, 1)[..., None]

    if gender == 1:  # long hair behind the face down to the shoulders
        image = image * (1 - ellipse(cx, cy + 0.12, rx * 1.45, ry * 1.25)) + hair * ellipse(cx, cy + 0.12, rx * 1.45, ry * 1.25)
    skin = _SKIN_BY_RACE[race] * rng.uniform(0.92, 1.08) + rng.normal(0, 5, 3)
    face = ellipse(cx, cy, rx, ry)
    image = image * (1 - face) + skin * face
    # Hair cap on top of the head (short for men, fuller for women).
    cap = ellipse(cx, cy - ry * 0.75, rx * 1.05, ry * (0.35 if gender == 0 else 0.5)) * (Y < cy - ry * 0.45)[..., None]
    image = image * (1 - cap) + hair * cap
    # Age: forehead wrinkle lines whose count and contrast grow with age; children get larger eyes.
    lines = int(np.clip((age - 25) / 12.0, 0, 5))
    for k in range(lines):  # at most 5 lines, each drawn over the whole image at once
        ly = cy - ry * 0.35 - k * ry * 0.08
        line = (np.abs(Y - ly) < 0.5 / height + 0.004) & (np.abs(X - cx) < rx * 0.6)
        image = image - 35.0 * min(age / 80.0, 1.0) * line[..., None]
    eye_r = 0.055 if age < 12 else 0.04
    for ex in (cx - rx * 0.4, cx + rx * 0.4):
        eye = ellipse(ex, cy - ry * 0.1, eye_r, eye_r * 0.7)
        image = image * (1 - eye) + np.array([30, 25, 25], np.float32) * eye
    mouth = ellipse(cx, cy + ry * 0.5, rx * 0.35, 0.025)
    lips = np.array([150, 60, 60], np.float32) if gender == 1 else skin * 0.6
    image = image * (1 - mouth) + lips * mouth
    image = image * rng.uniform(0.8, 1.2) + rng.normal(0, 4.0, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


_FIRST_CAPTURE = datetime.datetime(2017, 1, 16, 12, 0, 0)


def _is_face_file(name):
    try:
        parse_utkface_name(name)
        return True
    except EdgekitError:
        return False


def synthesize_faces(out_dir, count=64, size=(64, 64), seed=0, overwrite=False):
    """Write ``count`` UTKFace-named JPEGs (``[age]_[gender]_[race]_[datetime].jpg``)."""
    out_dir = os.fspath(out_dir)
    if int(count) < 1:
        raise EdgekitError("face count must be >= 1, got %s" % count)
    height, width = _parse_size(size)
    _prepare_out_dir(out_dir, _is_face_file, overwrite)
    rng = np.random.default_rng(seed)
    ages, genders, races = [], [0, 0], [0] * len(RACES)
    for i in range(int(count)):
        age = int(np.clip(rng.gamma(2.2, 15.0) + 1, 1, 95))
        gender = int(rng.integers(0, len(GENDERS)))
        race = int(rng.integers(0, len(RACES)))
        image = render_face(rng, age, gender, race, height, width)
        # Unique, plausible capture times: one second apart from 2017-01-16 12:00, random ms.
        taken = _FIRST_CAPTURE + datetime.timedelta(seconds=i)
        stamp = taken.strftime("%Y%m%d%H%M%S") + "%03d" % int(rng.integers(0, 1000))
        path = os.path.join(out_dir, "%d_%d_%d_%s.jpg" % (age, gender, race, stamp))
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:  # pragma: no cover - OpenCV without JPEG support
            raise EdgekitError("OpenCV cannot encode JPEG here; install opencv-python-headless")
        write_bytes(path, data.tobytes())
        ages.append(age)
        genders[gender] += 1
        races[race] += 1
    summary = {"kind": "face", "out_dir": out_dir, "images": int(count), "size": [height, width],
               "seed": int(seed), "age_min": min(ages), "age_max": max(ages),
               "genders": dict(zip(GENDERS, genders)), "races": dict(zip(RACES, races))}
    _write_marker(out_dir, summary)
    return summary
