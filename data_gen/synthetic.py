"""Synthetic raw skeleton data in the real NTU RGB+D, PKU-MMD II, NW-UCLA and MSR-Action3D file formats,
and pose-estimator output (COCO-17 2-D keypoints) in a pyskl annotation pickle.

The real datasets cannot be downloaded here, so the demo and the tests run the converters on files
this module writes.  Usage::

    python -m data_gen.synthetic --format ntu --out data/raw_ntu --classes 10 --subjects 4 --seed 0
    python -m data_gen.synthetic --format pku --out data/raw_pku --classes 12 --subjects 3 --seed 0
    python -m data_gen.synthetic --format ucla --out data/all_sqe --classes 10 --subjects 4 --seed 0
    python -m data_gen.synthetic --format msr --out data/msr_raw --classes 4 --subjects 4 --seed 0
    python -m data_gen.synthetic --format pose2d --out data/pose_raw --classes 6 --subjects 10 --seed 0

or from Python: ``generate_ntu(out, classes=10, ...)``, ``generate_pku(out, classes=12, ...)``,
``generate_ucla(out, classes=10, ...)``, ``generate_msr(out, classes=4, ...)`` and
``generate_pose2d(out, classes=6, ...)``.

Design
------
*Body.*  A 25-joint Kinect v2 skeleton (NTU joint order) in a body frame (y up, facing -z, origin at
the spine base), posed by forward kinematics over 12 joint angles (torso flexion and twist; shoulder
flexion and abduction and elbow flexion per arm; hip and knee flexion per leg) and 3 root
translations.

*Classes are motions.*  Classes come in pairs (action ids 2k-1, 2k) that share one motion recipe drawn
from a generator seeded by k alone, so a class means the same motion under every ``seed``: 2-4 active
degrees of freedom, each with a waveform (sine, sharpened sine, one-shot rise-and-return or a smooth
ramp), a number of cycles over the action, an amplitude and a phase.  The even class of a pair plays
the recipe backwards in time (like "sit down" / "stand up"), so the two visit exactly the same poses
and differ only in how the body moves: no single frame, nor the average pose, tells them apart.
Pairs differ in which joints move and how.  Every class starts from the same rest pose.  Two-person
classes (NTU ids 50-60 and 106-120; the last ten PKU ids) add a partner facing the actor with a recipe
of its own.

*Per-sample nuisances* (each drawn from a generator seeded by ``seed`` and the sample's ids, so
generation is deterministic and independent of order): body size (per subject, plus per-segment
proportions, ``shape_var``), tempo and so length (``tempo_var``, length clipped to 40-300 frames),
phase (``phase_var`` of a cycle), amplitude (``amp_var``), viewpoint (yaw 45 degrees per camera id
step plus a uniform jitter of ``max_yaw`` degrees; camera height and distance per setup), Gaussian
joint noise (``noise`` metres), partial actions (with probability ``p_partial`` only a 60-100 % window
of the motion is performed), missing first or last frames (with probability ``p_missing`` 1-15 % of
frames at one end have no body, as when Kinect loses the actor), and a low-energy third "ghost" body
(with probability ``p_third``, a tight jittering cluster of joints, placed anywhere in the body list
so that body selection by energy matters; present throughout when listed before an actor, else for a
random stretch).

*Files.*  The 3-D formats hold Kinect camera-space metres (x to the sensor's left, y up, z away from it;
``kinect_space``), as the real recordings do.  NTU: one ``SsssCcccPpppRrrrAaaa.skeleton`` per sample
with every field of the official format and CRLF line ends (depth/colour pixel coordinates from a
pinhole projection, a joint orientation quaternion from the body yaw, tracking states 2). PKU-MMD II:
``skeleton/<video>.txt`` (150 values per frame, second body zeros when absent), ``label/<video>.txt``
(``label,start,end,1``; several actions per video separated by idle gaps), and ``cross_subject_v2.txt``
/ ``cross_view_v2.txt`` (training videos on line 2, validation videos on line 4).  Video names are
``A<subject>N<sequence>-<view>`` with views L, M, R; subjects not divisible by 3 and views M, R train.
NW-UCLA: one ``aAA_sSS_eEE_vVV.json`` per sample in the ``all_sqe`` form (``{"file_name", "label",
"skeletons": [T][20][3]}``, metres): the actor alone (no partner, ghost or missing frames), its NTU
joints ``UCLA_JOINTS`` taken as the 20 Kinect v1 joints of the ``kinect20`` layout; label k
(1..10) is NTU-style class k, written under NW-UCLA's action number ``UCLA_ACTIONS[k - 1]``; views 1..3
are the camera ids (yaw 45 degrees apart), subjects ``sSS`` and repetitions ``eEE`` from 0.
MSR-Action3D: one ``aAA_sSS_eEE_skeleton3D.txt`` per sample (subjects and repetitions from 1, one
frontal view): 20 lines of ``x y z 1`` a frame, the actor's NTU joints ``MSR_JOINTS`` in MSR's joint
order, and the frames where the actor is missing written as all zeros, as the tracker writes them.
Pose-estimator output: ``OUT/pose2d.pkl``, a pyskl annotation pickle (``split`` with ``xsub_train``, the
odd subjects, and ``xsub_val``, the even ones; per recording ``aAA_sSS_eEE`` its ``frame_dir``,
``label`` (0-based), ``img_shape``, ``total_frames``, ``keypoint`` M x T x 17 x 2 and ``keypoint_score``
M x T x 17): the actor's COCO-17 keypoints (``coco17`` layout) in 1920 x 1080 image pixels from the
NTU colour camera's projection, the limbs' joints taken from the NTU joints (``COCO_LIMBS``) and the
face placed around the head; as an estimator leaves them, a joint it missed is 0 with score 0
(probability ``p_joint_missing`` each), a frame in which it found nobody is all zeros (probability
``p_frame_empty``, plus the missing first or last frames of ``p_missing``), and 0 to ``bystanders``
people standing still elsewhere in the picture are listed before or after the actor. Scores of the
joints found are uniform in [0.5, 1].
"""

import argparse
import inspect
import json
import os
import pickle
import sys

import numpy as np

NTU_TWO_PERSON = frozenset(range(50, 61)) | frozenset(range(106, 121))
PKU_CLASSES = 51
PKU_TWO_PERSON = frozenset(range(42, 52))
PKU_VIEWS = ("L", "M", "R")
# Kinect v1 (kinect20) joints from the NTU joints: hip centre, spine, shoulder centre, head, the limbs.
UCLA_JOINTS = [0, 1, 20, 3] + list(range(4, 20))
UCLA_ACTIONS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)  # NW-UCLA action numbers of labels 1..10
# MSR-Action3D's joints from the NTU joints: shoulders, shoulder centre, spine, hips, hip centre, then the
# limbs left before right (elbows, wrists, hands, knees, ankles, feet), head.
MSR_JOINTS = [4, 8, 20, 1, 12, 16, 0, 5, 9, 6, 10, 7, 11, 13, 17, 14, 18, 15, 19, 3]
MSR_CLASSES = 20
# COCO-17 keypoints 5..16 (shoulders, elbows, wrists, hips, knees, ankles, left before right) from the
# NTU joints; the face (nose, eyes, ears) is placed around the NTU head.
COCO_LIMBS = [4, 8, 5, 9, 6, 10, 12, 16, 13, 17, 14, 18]
POSE_IMAGE = (1920, 1080)  # width, height in pixels

# Rest pose, metres, body frame (y up, body faces -z, +x is the body's left), NTU joint order.
REST_POSE = np.array(
    [
        [0.00, 0.00, 0.00],
        [0.00, 0.27, 0.00],
        [0.00, 0.57, 0.00],
        [0.00, 0.72, 0.00],  # 1-4
        [0.18, 0.47, 0.00],
        [0.20, 0.20, 0.02],
        [0.21, -0.03, 0.02],
        [0.21, -0.10, 0.02],  # 5-8
        [-0.18, 0.47, 0.00],
        [-0.20, 0.20, 0.02],
        [-0.21, -0.03, 0.02],
        [-0.21, -0.10, 0.02],  # 9-12
        [0.08, -0.02, 0.00],
        [0.09, -0.42, 0.01],
        [0.09, -0.80, 0.00],
        [0.09, -0.85, -0.10],  # 13-16
        [-0.08, -0.02, 0.00],
        [-0.09, -0.42, 0.01],
        [-0.09, -0.80, 0.00],
        [-0.09, -0.85, -0.10],  # 17-20
        [0.00, 0.50, 0.00],
        [0.21, -0.16, 0.02],
        [0.18, -0.08, -0.02],  # 21-23
        [-0.21, -0.16, 0.02],
        [-0.18, -0.08, -0.02],
    ]
)  # 24-25

_UPPER = [1, 2, 3, 20, 4, 5, 6, 7, 21, 22, 8, 9, 10, 11, 23, 24]
_L_ARM, _L_FORE = [5, 6, 7, 21, 22], [6, 7, 21, 22]
_R_ARM, _R_FORE = [9, 10, 11, 23, 24], [10, 11, 23, 24]
_L_LEG, _L_SHIN = [13, 14, 15], [14, 15]
_R_LEG, _R_SHIN = [17, 18, 19], [18, 19]
# (axis, pivot joint index, moved joint indices) for the 12 angles, applied distal first.
_ANGLES = [
    ("x", 5, _L_FORE),
    ("x", 4, _L_ARM),
    ("z", 4, _L_ARM),  # 0 l-elbow, 1 l-sh flex, 2 l-sh abd
    ("x", 9, _R_FORE),
    ("x", 8, _R_ARM),
    ("z", 8, _R_ARM),  # 3 r-elbow, 4 r-sh flex, 5 r-sh abd
    ("x", 13, _L_SHIN),
    ("x", 12, _L_LEG),  # 6 l-knee, 7 l-hip
    ("x", 17, _R_SHIN),
    ("x", 16, _R_LEG),  # 8 r-knee, 9 r-hip
    ("x", 0, _UPPER),
    ("y", 0, _UPPER),  # 10 torso flex, 11 torso twist
]
N_DOF = len(_ANGLES) + 3  # + root translation x, y, z
_DOF_WEIGHTS = np.array([3, 3, 3, 3, 3, 3, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1, 1, 1], dtype=float)
_WAVES = ("sine", "sharp", "bump", "ramp")


def _rot(axis, angle):
    """Rotation matrices about a principal axis: T -> T x 3 x 3."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    if axis == "x":
        m = [[o, z, z], [z, c, -s], [z, s, c]]
    elif axis == "y":
        m = [[c, z, s], [z, o, z], [-s, z, c]]
    else:
        m = [[c, -s, z], [s, c, z], [z, z, o]]
    return np.moveaxis(np.array(m), (0, 1), (-2, -1))  # T x 3 x 3


def class_recipe(action_id, partner=False):
    """The fixed motion recipe of a class (or of its partner): list of (dof, wave, cycles, amplitude, phase).

    Classes 2k-1 and 2k share a recipe; ``time_reversed`` tells which of the two plays it backwards.
    """
    rng = np.random.default_rng(1_000_003 + 7919 * int(partner) + (int(action_id) + 1) // 2)
    n_active = int(rng.integers(2, 5))
    dofs = rng.choice(N_DOF, size=n_active, replace=False, p=_DOF_WEIGHTS / _DOF_WEIGHTS.sum())
    recipe = []
    for dof in dofs:
        wave = _WAVES[int(rng.integers(len(_WAVES)))]
        cycles = float(rng.choice([0.5, 1.0, 1.5, 2.0, 3.0]))
        scale = 0.25 if dof >= len(_ANGLES) else 1.2
        amplitude = float(rng.uniform(0.35, 1.0) * scale * rng.choice([-1, 1]))
        recipe.append((int(dof), wave, cycles, amplitude, float(rng.uniform(0, 2 * np.pi))))
    return recipe


def time_reversed(action_id):
    """Whether a class plays its pair's recipe backwards in time (the even action ids)."""
    return int(action_id) % 2 == 0


def class_base_length(action_id):
    """The typical number of frames of a class (and of its time-reversed pair) at tempo 1."""
    return int(np.random.default_rng(2_000_003 + (int(action_id) + 1) // 2).integers(60, 200))


def _waveform(wave, cycles, phase, tau):
    """Unit-amplitude waveform values at normalised times ``tau`` (T,)."""
    arg = 2 * np.pi * cycles * tau + phase
    if wave == "sine":
        return np.sin(arg)
    if wave == "sharp":
        return np.sign(np.sin(arg)) * np.abs(np.sin(arg)) ** 3
    if wave == "bump":
        return np.sin(np.pi * np.clip(tau, 0, 1)) ** 2 * np.sin(phase / 2 + 1.0)
    return np.clip(tau * 1.5, 0, 1) ** 2 * (3 - 2 * np.clip(tau * 1.5, 0, 1)) * np.cos(phase / 2)


def pose_sequence(recipe, tau, amp_scale, phase_shift, proportions):
    """Body-frame joint positions T x 25 x 3 for a recipe at normalised times ``tau`` (T,)."""
    dof_values = np.zeros((N_DOF, len(tau)))  # DOF x T
    for dof, wave, cycles, amplitude, phase in recipe:
        shift = phase_shift * 2 * np.pi if wave in ("sine", "sharp") else 0.0
        dof_values[dof] += amp_scale * amplitude * _waveform(wave, cycles, phase + shift, tau)
    pos = np.broadcast_to(REST_POSE * proportions, (len(tau), 25, 3)).copy()  # T x 25 x 3
    for (axis, pivot, moved), angle in zip(_ANGLES, dof_values[: len(_ANGLES)]):
        rot = _rot(axis, angle)  # T x 3 x 3
        centre = pos[:, pivot : pivot + 1]  # T x 1 x 3
        pos[:, moved] = np.einsum("tij,tvj->tvi", rot, pos[:, moved] - centre) + centre
    pos += dof_values[len(_ANGLES) :].T[:, None, :]
    return pos


def _proportions(rng, shape_var):
    """Per-joint scale factors 25 x 1: separate arm, leg and torso segment lengths."""
    prop = np.ones((25, 1))
    for group in (_UPPER, _L_ARM + _R_ARM, _L_LEG + _R_LEG):
        prop[group] *= 1 + rng.uniform(-shape_var / 2, shape_var / 2)
    return prop


def _subject_size(subject, shape_var):
    """Overall body scale of a subject (fixed per subject id)."""
    return 1 + np.random.default_rng(3_000_017 + int(subject)).uniform(-1.5 * shape_var, 1.5 * shape_var)


def _place(body, yaw, offset):
    """Body-frame positions T x 25 x 3 turned by ``yaw`` about y and moved by ``offset`` (3,)."""
    return np.einsum("ij,tvj->tvi", _rot("y", np.array(yaw)), body) + offset


def simulate(
    action_id,
    two_person,
    rng,
    *,
    yaw_deg=0.0,
    max_yaw=10.0,
    subject_scale=1.0,
    shape_var=0.1,
    tempo_var=0.25,
    phase_var=0.25,
    amp_var=0.2,
    noise=0.01,
    p_partial=0.1,
    p_missing=0.1,
    p_third=0.1,
    cam_height=0.8,
    cam_distance=3.0,
    min_len=40,
    max_len=300,
):
    """Camera-space bodies B x T x 25 x 3 (metres) and their presence B x T (bool) for one sample: x to the
    camera's right, y up, z away from it, the frame an image projects from (``_pixels``); the 3-D formats
    write them in Kinect's camera space (``kinect_space``)."""
    tempo = np.exp(rng.uniform(-np.log1p(tempo_var), np.log1p(tempo_var)))
    length = int(np.clip(round(class_base_length(action_id) * tempo), min_len, max_len))
    start, stop = 0.0, 1.0
    if rng.random() < p_partial:
        width = rng.uniform(0.6, 1.0)
        start = rng.uniform(0, 1 - width)
        stop = start + width
    tau = np.linspace(start, stop, length)
    phase_shift = rng.uniform(-phase_var, phase_var)
    recipes = [class_recipe(action_id)] + ([class_recipe(action_id, partner=True)] if two_person else [])
    layout = (
        [(0.0, np.zeros(3))]
        if not two_person
        else [(-np.pi / 2, np.array([-0.5, 0, 0])), (np.pi / 2, np.array([0.5, 0, 0]))]
    )
    bodies = []
    for recipe, (facing, offset) in zip(recipes, layout):
        size = subject_scale * rng.uniform(0.97, 1.03)
        prop = _proportions(rng, shape_var) * size
        amp = rng.uniform(1 - amp_var, 1 + amp_var)
        body = pose_sequence(recipe, tau, amp, phase_shift, prop)  # T x 25 x 3
        if time_reversed(action_id):
            body = body[::-1]
        bodies.append(_place(body, facing, offset))
    view_yaw = np.deg2rad(yaw_deg + rng.uniform(-max_yaw, max_yaw))
    # Camera looks along +z from (0, cam_height, -cam_distance); the scene is turned by the view yaw.
    cam_offset = np.array([rng.uniform(-0.3, 0.3), 0.85 - cam_height, cam_distance])
    bodies = [_place(b, view_yaw, cam_offset) for b in bodies]
    present = np.ones((len(bodies), length), dtype=bool)
    if rng.random() < p_third:
        centre = np.array([rng.uniform(-1.5, 1.5), rng.uniform(-0.5, 0.5), cam_distance + rng.uniform(0.5, 1.5)])
        ghost = centre + rng.normal(0, 0.03, size=(1, 25, 3)) + rng.normal(0, 0.005, size=(length, 25, 3))
        where = int(rng.integers(len(bodies) + 1))
        bodies.insert(where, ghost)
        # A ghost listed before an actor stays for the whole take, so every body keeps its slot in the file.
        ghost_present = np.ones(length, dtype=bool)
        if where == len(bodies) - 1:
            ghost_present[:] = False
            g0 = int(rng.integers(0, length // 2))
            ghost_present[g0 : g0 + int(rng.integers(length // 4, length))] = True
        present = np.insert(present, where, ghost_present, axis=0)
    out = np.stack(bodies)  # B x T x 25 x 3
    out = out + rng.normal(0, noise, size=out.shape)
    if rng.random() < p_missing:
        cut = max(1, int(round(length * rng.uniform(0.01, 0.15))))
        if rng.random() < 0.5:
            present[:, :cut] = False
        else:
            present[:, length - cut :] = False
    return out, present


def kinect_space(points):
    """Points ... x 3 of ``simulate``'s camera frame in Kinect's camera space, where x grows to the sensor's
    left (a right-handed frame: a person facing the sensor has the right shoulder at the larger x, as in
    every real NTU, NW-UCLA and MSR-Action3D recording). ``simulate``'s frame is its mirror image: written
    as they were, its people had the left -> right shoulder vector half a turn from the normalisation's
    +x, and that turn left them at scattered tilts (the demo's 960 samples: all turned over 90 degrees,
    61 upside down)."""
    return points * np.array([-1.0, 1.0, 1.0])


def _body_line(body_id, lean):
    return "%d 0 1 1 1 1 0 %.7g %.7g 2" % (body_id, lean[0], lean[1])


def ntu_file_text(bodies, present, body_ids):
    """The text of an NTU ``.skeleton`` file (CRLF line ends) for bodies B x T x 25 x 3 and presence B x T."""
    n_body, n_frame = present.shape
    xyz = bodies  # B x T x 25 x 3
    z = np.maximum(xyz[..., 2], 0.1)
    depth = np.stack([256 + 365.5 * xyz[..., 0] / z, 212 - 365.5 * xyz[..., 1] / z], -1)  # B x T x 25 x 2
    color = np.stack([960 + 1081.4 * xyz[..., 0] / z, 540 - 1081.4 * xyz[..., 1] / z], -1)
    shoulders = xyz[..., 4, :] - xyz[..., 8, :]  # B x T x 3
    half_yaw = np.arctan2(shoulders[..., 2], shoulders[..., 0])[..., None] / 2  # B x T x 1
    quat = np.concatenate(
        [np.cos(half_yaw), np.zeros_like(half_yaw), np.sin(half_yaw), np.zeros_like(half_yaw)], -1
    )  # B x T x 4
    fields = np.concatenate([xyz, depth, color, np.broadcast_to(quat[..., None, :], xyz.shape[:-1] + (4,))], -1)
    joint_fmt = "%.7g %.7g %.7g %.7g %.7g %.7g %.7g %.7g %.7g %.7g %.7g 2\r\n" * 25
    lines = ["%d\r\n" % n_frame]
    for t in range(n_frame):
        here = np.flatnonzero(present[:, t])
        lines.append("%d\r\n" % len(here))
        for b in here:
            lean = (xyz[b, t, 20, 0] - xyz[b, t, 0, 0], xyz[b, t, 20, 2] - xyz[b, t, 0, 2])
            lines.append(_body_line(body_ids[b], lean) + "\r\n25\r\n")
            lines.append(joint_fmt % tuple(fields[b, t].ravel()))
    return "".join(lines)


def _setup_geometry(setup):
    """Camera height and distance (metres) of a setup id."""
    rng = np.random.default_rng(4_000_037 + int(setup))
    return float(rng.uniform(0.5, 1.2)), float(rng.uniform(2.6, 3.6))


def _action_ids(classes, action_ids, limit):
    ids = list(action_ids) if action_ids else list(range(1, classes + 1))
    bad = [i for i in ids if not 1 <= i <= limit]
    if not ids or bad:
        raise ValueError(f"action ids must lie in 1..{limit}, found {bad[0] if bad else 'none'}")
    if len(set(ids)) < len(ids):
        raise ValueError(f"action ids must differ, found {sorted(i for i in set(ids) if ids.count(i) > 1)} repeated")
    return ids


def generate_ntu(out, classes=10, subjects=4, cameras=3, setups=2, replications=1, seed=0, action_ids=None, **knobs):
    """Write NTU ``.skeleton`` files for every setup x camera x subject x replication x action; returns names."""
    ids = _action_ids(classes, action_ids, 120)
    os.makedirs(out, exist_ok=True)
    names = []
    for s in range(1, setups + 1):
        cam_height, cam_distance = _setup_geometry(s)
        for c in range(1, cameras + 1):
            for p in range(1, subjects + 1):
                size = _subject_size(p, knobs.get("shape_var", 0.1))
                for r in range(1, replications + 1):
                    for a in ids:
                        rng = np.random.default_rng([seed, s, c, p, r, a])
                        bodies, present = simulate(
                            a,
                            a in NTU_TWO_PERSON,
                            rng,
                            yaw_deg=45.0 * (c - 2) + 20.0 * (r - 1),
                            subject_scale=size,
                            cam_height=cam_height,
                            cam_distance=cam_distance,
                            **knobs,
                        )
                        body_ids = 72057594037927936 + rng.integers(1000, 9999, size=len(bodies))
                        name = "S%03dC%03dP%03dR%03dA%03d.skeleton" % (s, c, p, r, a)
                        with open(os.path.join(out, name), "w", newline="") as f:
                            f.write(ntu_file_text(kinect_space(bodies), present, body_ids))
                        names.append(name)
    return names


def _pku_video(actions, rng, knobs, yaw_deg, size, gap=(10, 40)):
    """Frames F x 150 of one PKU video holding ``actions`` in order, and their (label, start, end)."""
    frames, spans, t = [], [], 0
    for a in actions:
        idle = int(rng.integers(*gap))
        frames.append(np.zeros((idle, 2, 25, 3)))
        t += idle
        bodies, present = simulate(
            a,
            a in PKU_TWO_PERSON,
            rng,
            yaw_deg=yaw_deg,
            subject_scale=size,
            **{**knobs, "p_missing": 0.0, "p_third": 0.0},
        )
        seq = np.zeros((bodies.shape[1], 2, 25, 3))
        seq[:, : min(2, len(bodies))] = kinect_space(bodies[:2]).transpose(1, 0, 2, 3)
        frames.append(seq)
        spans.append((a, t, t + len(seq)))
        t += len(seq)
    frames.append(np.zeros((int(rng.integers(*gap)), 2, 25, 3)))
    video = np.concatenate(frames)  # F x 2 x 25 x 3
    # Idle frames show the actor standing at rest where the previous action left off.
    occupied = np.abs(video).sum(axis=(2, 3)) > 0  # F x 2
    for m in range(2):
        last = None
        for f in range(len(video)):
            if occupied[f, m]:
                last = video[f, m]
            elif m == 0:
                video[f, m] = last if last is not None else video[occupied[:, 0].argmax(), 0]
    return video.reshape(len(video), 150), spans


def generate_pku(
    out, classes=12, subjects=3, cameras=3, replications=1, actions_per_video=5, seed=0, action_ids=None, **knobs
):
    """Write a PKU-MMD II folder (skeleton/, label/, split files); returns the video names."""
    ids = _action_ids(classes, action_ids, PKU_CLASSES)
    if not 1 <= cameras <= len(PKU_VIEWS):
        raise ValueError(f"PKU-MMD has {len(PKU_VIEWS)} views; got cameras={cameras}")
    os.makedirs(os.path.join(out, "skeleton"), exist_ok=True)
    os.makedirs(os.path.join(out, "label"), exist_ok=True)
    videos, video_index = [], 0
    for p in range(1, subjects + 1):
        size = _subject_size(p, knobs.get("shape_var", 0.1))
        for r in range(1, replications + 1):
            actions = [ids[(video_index * actions_per_video + i) % len(ids)] for i in range(actions_per_video)]
            video_index += 1
            for v, view in enumerate(PKU_VIEWS[:cameras]):
                rng = np.random.default_rng([seed, p, r, v])
                frames, spans = _pku_video(actions, rng, knobs, 45.0 * (v - 1), size)
                name = "A%02dN%02d-%s" % (p, r, view)
                np.savetxt(os.path.join(out, "skeleton", name + ".txt"), frames, fmt="%.6f")
                with open(os.path.join(out, "label", name + ".txt"), "w") as f:
                    f.write("".join("%d,%d,%d,1\n" % span for span in spans))
                videos.append((name, p, view))
    for split, is_train in (
        ("cross_subject_v2.txt", lambda p, view: p % 3 != 0),
        ("cross_view_v2.txt", lambda p, view: view != "L"),
    ):
        train = [n for n, p, view in videos if is_train(p, view)]
        val = [n for n, p, view in videos if not is_train(p, view)]
        with open(os.path.join(out, split), "w") as f:
            f.write("Training videos: \n%s\nValidataion videos: \n%s\n" % (", ".join(train), ", ".join(val)))
    return [n for n, _, _ in videos]


def generate_ucla(out, classes=10, subjects=4, cameras=3, replications=1, seed=0, **knobs):
    """Write NW-UCLA ``all_sqe`` JSON files for every action x subject x repetition x view; returns names."""
    if not 1 <= classes <= len(UCLA_ACTIONS):
        raise ValueError(f"NW-UCLA has {len(UCLA_ACTIONS)} classes; got classes={classes}")
    if not 1 <= cameras <= 3:
        raise ValueError(f"NW-UCLA has 3 views; got cameras={cameras}")
    knobs.update(p_missing=0.0, p_third=0.0)
    os.makedirs(out, exist_ok=True)
    names = []
    for label in range(1, classes + 1):
        for p in range(1, subjects + 1):
            size = _subject_size(p, knobs.get("shape_var", 0.1))
            for e in range(replications):
                for v in range(1, cameras + 1):
                    rng = np.random.default_rng([seed, label, p, e, v, 7])
                    bodies, _ = simulate(label, False, rng, yaw_deg=45.0 * (v - 2), subject_scale=size, **knobs)
                    name = "a%02d_s%02d_e%02d_v%02d" % (UCLA_ACTIONS[label - 1], p, e, v)
                    skeletons = np.round(kinect_space(bodies[0])[:, UCLA_JOINTS], 6).tolist()  # T x 20 x 3
                    with open(os.path.join(out, name + ".json"), "w") as f:
                        json.dump({"file_name": name, "skeletons": skeletons, "label": label}, f)
                    names.append(name + ".json")
    return names


def generate_msr(out, classes=4, subjects=4, replications=1, seed=0, action_ids=None, **knobs):
    """Write MSR-Action3D skeleton files for every action x subject x repetition; returns names."""
    ids = _action_ids(classes, action_ids, MSR_CLASSES)
    knobs["p_third"] = 0.0
    os.makedirs(out, exist_ok=True)
    names = []
    for a, p, e, _, _, bodies, present in _one_person_takes(ids, subjects, replications, seed, 11, knobs):
        frames = np.ones((bodies.shape[1], 20, 4))  # T x 20 x 4: x y z confidence
        frames[..., :3] = kinect_space(bodies[0])[:, MSR_JOINTS]
        frames[~present[0]] = 0
        name = "a%02d_s%02d_e%02d_skeleton3D.txt" % (a, p, e)
        np.savetxt(os.path.join(out, name), frames.reshape(-1, 4), fmt="%.6f")
        names.append(name)
    return names


def _one_person_takes(ids, subjects, replications, seed, salt, knobs):
    """(action, subject, repetition, body size, the take's generator, bodies, presence) of every take of one
    person, action by action, subjects and repetitions from 1; `salt` keeps each format's draws apart."""
    for a in ids:
        for p in range(1, subjects + 1):
            size = _subject_size(p, knobs.get("shape_var", 0.1))
            for e in range(1, replications + 1):
                rng = np.random.default_rng([seed, a, p, e, salt])
                bodies, present = simulate(a, False, rng, subject_scale=size, **knobs)
                yield a, p, e, size, rng, bodies, present


def coco17_points(body):
    """COCO-17 keypoints T x 17 x 3 (camera space, metres) of a body T x 25 x 3 in NTU joint order: the
    nose 8 cm in front of the head, the eyes 6 cm in front, 3 cm up and 3 cm to each side, the ears
    7.5 cm to each side; the limbs' joints as they are."""

    def unit(v):
        return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)

    head = body[:, 3]
    left = unit(body[:, 4] - body[:, 8])  # right shoulder -> left shoulder
    up = unit(head - body[:, 2])  # neck -> head
    forward = unit(np.cross(up, left))  # the way the body faces (body frame: y up x left = -z)
    face = [
        head + 0.08 * forward,
        head + 0.06 * forward + 0.03 * up + 0.03 * left,
        head + 0.06 * forward + 0.03 * up - 0.03 * left,
        head + 0.075 * left,
        head - 0.075 * left,
    ]
    return np.concatenate([np.stack(face, axis=1), body[:, COCO_LIMBS]], axis=1)


def _pixels(points):
    """Image pixels ... x 2 of camera-space points ... x 3, as the NTU colour camera projects them."""
    z = np.maximum(points[..., 2], 0.1)
    return np.stack([960 + 1081.4 * points[..., 0] / z, 540 - 1081.4 * points[..., 1] / z], -1)


def _bystander(rng, length, size, cam_distance):
    """A person standing still T x 25 x 3 (camera space) beside or behind the actor, swaying slightly."""
    side = rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 1.8)
    offset = np.array([side, -0.05, cam_distance + rng.uniform(0.0, 2.0)])
    body = _place(np.broadcast_to(REST_POSE * size, (length, 25, 3)), rng.uniform(-1.0, 1.0), offset)
    return body + rng.normal(0, 0.005, size=body.shape)


def generate_pose2d(
    out,
    classes=6,
    subjects=4,
    replications=1,
    seed=0,
    action_ids=None,
    p_joint_missing=0.08,
    p_frame_empty=0.05,
    bystanders=0,
    **knobs,
):
    """Write ``out/pose2d.pkl``: one pose-estimator recording (COCO-17, image pixels) per action x subject x
    repetition, in a pyskl annotation pickle (module docstring); returns the recordings' names."""
    ids = _action_ids(classes, action_ids, 120)
    knobs["p_third"] = 0.0  # Kinect's ghost bodies; an estimator's extra people are the bystanders
    annotations, split = [], {"xsub_train": [], "xsub_val": []}
    for a, p, e, size, rng, bodies, present in _one_person_takes(ids, subjects, replications, seed, 17, knobs):
        length = bodies.shape[1]
        people = [bodies[0]]
        for _ in range(int(rng.integers(0, bystanders + 1))):
            people.insert(int(rng.integers(len(people) + 1)), _bystander(rng, length, size, 3.0))
        keypoint = np.stack([_pixels(coco17_points(body)) for body in people]).astype(np.float32)
        score = rng.uniform(0.5, 1.0, keypoint.shape[:3]).astype(np.float32)  # M x T x 17
        missed = rng.random(keypoint.shape[:3]) < p_joint_missing
        missed[:, ~present[0] | (rng.random(length) < p_frame_empty)] = True  # nobody found
        keypoint[missed], score[missed] = 0.0, 0.0
        name = "a%02d_s%02d_e%02d" % (a, p, e)
        annotations.append(
            dict(
                frame_dir=name,
                label=ids.index(a),
                img_shape=POSE_IMAGE[::-1],
                original_shape=POSE_IMAGE[::-1],
                total_frames=length,
                keypoint=keypoint,
                keypoint_score=score,
            )
        )
        split["xsub_train" if p % 2 else "xsub_val"].append(name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "pose2d.pkl"), "wb") as f:
        pickle.dump({"split": split, "annotations": annotations}, f)
    return [annotation["frame_dir"] for annotation in annotations]


# The pose2d-only flags, defaulting to generate_pose2d's own defaults (the other formats refuse them).
POSE2D_DEFAULTS = {
    name: inspect.signature(generate_pose2d).parameters[name].default
    for name in ("p_joint_missing", "p_frame_empty", "bystanders")
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=("ntu", "pku", "ucla", "msr", "pose2d"), required=True)
    parser.add_argument("--out", required=True, help="output folder for the raw files")
    parser.add_argument(
        "--classes",
        type=int,
        default=10,
        help="use action ids 1..N (N <= 120 NTU and pose2d, <= 51 PKU, <= 10 NW-UCLA, <= 20 MSR)",
    )
    parser.add_argument("--action-ids", type=int, nargs="+", help="explicit 1-based action ids (overrides --classes)")
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--cameras", type=int, default=3, help="camera ids (NTU), views L, M, R (PKU), views (UCLA)")
    parser.add_argument("--setups", type=int, default=2, help="NTU setups")
    parser.add_argument(
        "--replications",
        type=int,
        default=1,
        help="NTU replications / PKU sequences / NW-UCLA, MSR and pose2d repetitions per subject",
    )
    for name, kind, what in (
        ("p_joint_missing", float, "probability that a joint is missed"),
        ("p_frame_empty", float, "probability that nobody is found in a frame"),
        ("bystanders", int, "at most this many people standing by"),
    ):
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=kind, help=f"pose2d: {what} (default {POSE2D_DEFAULTS[name]:g})"
        )
    parser.add_argument("--actions-per-video", type=int, default=5, help="PKU actions per video")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-yaw", type=float, default=10.0, help="yaw jitter (degrees) on top of the camera yaw")
    parser.add_argument("--shape-var", type=float, default=0.1, help="body size / proportion variation")
    parser.add_argument("--tempo-var", type=float, default=0.25, help="speed variation (0.25: x0.8 .. x1.25)")
    parser.add_argument("--phase-var", type=float, default=0.25, help="phase jitter, in cycles")
    parser.add_argument("--amp-var", type=float, default=0.2, help="amplitude variation")
    parser.add_argument("--noise", type=float, default=0.01, help="joint noise std (metres)")
    parser.add_argument("--p-partial", type=float, default=0.1, help="probability of a partial action")
    parser.add_argument("--p-missing", type=float, default=0.1, help="probability of missing first/last frames")
    parser.add_argument("--p-third", type=float, default=0.1, help="probability of a low-energy third body")
    args = parser.parse_args(argv)
    given = [f"--{name.replace('_', '-')}" for name in POSE2D_DEFAULTS if getattr(args, name) is not None]
    if given and args.format != "pose2d":
        parser.error(f"{', '.join(given)}: only --format pose2d has them")
    for name, default in POSE2D_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    problems = [
        f"--{name.replace('_', '-')} must be {wording}, found {getattr(args, name)}"
        for names, test, wording in RANGES
        for name in names
        if not test(getattr(args, name))
    ]
    if args.format == "ntu" and args.replications > 999:
        problems.append(
            f"--replications must be at most 999 (NTU file names have three digits), found {args.replications}"
        )
    if not args.out:
        problems.append("--out is empty; name a folder")
    elif os.path.exists(args.out) and not os.path.isdir(args.out):
        problems.append(f"--out {args.out} is a file; expected a folder")
    elif os.path.isdir(args.out) and os.listdir(args.out):  # its files could be real ones of the same names
        problems.append(f"--out {args.out} is not empty; give a new or empty folder")
    if problems:
        parser.error("; ".join(problems))
    try:
        _generate(args)
    except ValueError as exc:
        parser.error(str(exc))
    except KeyboardInterrupt:
        print(
            f"interrupted: {args.out} holds the raw files written so far (the last may be cut short); "
            "remove it and run again to write them all",
            file=sys.stderr,
        )
        raise SystemExit(130) from None


# The command line's counts, chances and spreads with their ranges, checked before anything is written.
RANGES = (
    (("classes", "subjects", "cameras", "setups", "replications", "actions_per_video"), lambda v: v >= 1, "at least 1"),
    (("p_partial", "p_missing", "p_third", "p_joint_missing", "p_frame_empty"), lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    (("bystanders",), lambda v: v >= 0, "at least 0"),
    (("max_yaw", "shape_var", "tempo_var", "phase_var", "amp_var", "noise"), lambda v: v >= 0.0, "at least 0"),
)


def _generate(args):
    """Write the raw files of `args.format` with the command line's counts and knobs."""
    function, own, what = FORMATS[args.format]
    knobs = {name: getattr(args, name) for name in KNOBS}
    common = dict(classes=args.classes, subjects=args.subjects, replications=args.replications, seed=args.seed)
    names = function(args.out, **common, **{name: getattr(args, name) for name in own}, **knobs)
    print(f"wrote {len(names)} {what} to {args.out}")


# Each format's generator, the command line's values it takes beyond the common ones, and what it writes.
FORMATS = {
    "ntu": (generate_ntu, ("cameras", "setups", "action_ids"), "NTU .skeleton files"),
    "pku": (generate_pku, ("cameras", "actions_per_video", "action_ids"), "PKU-MMD II videos"),
    "ucla": (generate_ucla, ("cameras",), "NW-UCLA all_sqe files"),
    "msr": (generate_msr, ("action_ids",), "MSR-Action3D skeleton files"),
    "pose2d": (
        generate_pose2d,
        ("action_ids", "p_joint_missing", "p_frame_empty", "bystanders"),
        "COCO-17 pose recordings (pose2d.pkl)",
    ),
}
KNOBS = ("max_yaw", "shape_var", "tempo_var", "phase_var", "amp_var", "noise", "p_partial", "p_missing", "p_third")

if __name__ == "__main__":
    main()
