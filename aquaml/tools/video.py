"""Videos of a trained policy: the deterministic evaluation episodes of ``aquaml eval``, rendered
off-screen (Gymnasium's ``rgb_array`` mode; no display needed) and written as MP4 or GIF.

MP4 goes through imageio's bundled ffmpeg, GIF through Pillow (``pip install ".[plot]"`` brings
both and the renderers of Gymnasium's classic-control envs). MuJoCo envs render headless with
``MUJOCO_GL=egl`` (GPU) or ``MUJOCO_GL=osmesa`` (CPU) set in the environment.
"""
from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import numpy as np

FORMATS = (".mp4", ".gif")


class FrameRecorder(gym.Wrapper):
    """Keeps the frame after each reset and step: an episode of T steps gives T + 1 frames."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.frames: list[np.ndarray] = []

    def reset(self, **kwargs):
        out = self.env.reset(**kwargs)
        self.frames.append(np.asarray(self.env.render()))
        return out

    def step(self, action):
        out = self.env.step(action)
        self.frames.append(np.asarray(self.env.render()))
        return out


def check_video_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"{path}: videos are written as {' or '.join(FORMATS)}; choose one of those suffixes")
    return path


def record_video(run_dir: str | Path, out: str | Path, episodes: int = 1) -> tuple[int, np.ndarray]:
    """Render ``episodes`` of the run's evaluation episodes (the ones ``aquaml eval`` runs first)
    into ``out``; returns ``(frames written, episode returns)``. Nothing in the run folder changes."""
    from aquaml.env import make_env
    from aquaml.env.driver import is_class_path
    from aquaml.starter.evaluation import Evaluator, load_state
    from aquaml.starter.run_folder import RunFolder

    out = check_video_path(out)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders off-screen without probing for a display
    if episodes <= 0:
        raise ValueError(f"--episodes must be positive, got {episodes}")
    config = RunFolder.open(run_dir).config
    env_id = config.get("env")
    if not isinstance(env_id, str) or is_class_path(env_id):
        raise ValueError(f"{run_dir}: --video needs a Gymnasium env id with rgb_array rendering; this run's env "
                         f"is {env_id!r}")
    recorder: list[FrameRecorder] = []

    def factory():
        env = make_env(env_id, render_mode="rgb_array")
        env.env = FrameRecorder(env.env)  # the wrapped Gymnasium env records what it renders
        recorder.append(env.env)
        return env

    agent, state, _ = load_state(run_dir)
    agent.env.close()
    evaluator = Evaluator.for_agent(agent, config["seed"], env_factory=factory)
    try:
        returns, _ = evaluator(agent.algo.actor_params(state), episodes, first_episode=10**6)
        frames = recorder[0].frames
        fps = int(recorder[0].metadata.get("render_fps") or 30)
    finally:
        evaluator.close()
    if not frames or frames[0].ndim != 3:
        raise ValueError(f"{env_id} rendered no rgb_array frames")
    write_frames(frames, out, fps)
    return len(frames), returns


def write_frames(frames: list[np.ndarray], out: Path, fps: int) -> None:
    """Frames as MP4 (H.264 via imageio-ffmpeg) or GIF (Pillow, which merges identical consecutive
    frames into one of their summed duration); written beside and renamed into place, so a crash
    leaves no half-written video."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    try:
        if out.suffix.lower() == ".gif":
            from PIL import Image

            images = [Image.fromarray(f) for f in frames]
            delay = 10 * max(1, round(100 / fps))  # GIF delays are whole centiseconds
            images[0].save(tmp, save_all=True, append_images=images[1:], duration=delay, loop=0)
        else:
            import warnings

            import imageio.v2 as imageio

            with warnings.catch_warnings():  # ffmpeg is a separate program: JAX's threads are not forked into it
                warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
                with imageio.get_writer(tmp, fps=fps, codec="libx264", macro_block_size=1, format="FFMPEG") as w:
                    for f in frames:
                        w.append_data(f)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
