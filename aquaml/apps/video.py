"""Videos of a trained policy: the deterministic evaluation episodes of ``aquaml eval``, rendered
off-screen (Gymnasium's ``rgb_array`` mode; no display needed) and written as MP4 or GIF.

MP4 goes through imageio's bundled ffmpeg, GIF through Pillow (``pip install ".[plot]"`` brings
both and the renderers of Gymnasium's classic-control envs). MuJoCo envs render headless with
``MUJOCO_GL=egl`` (GPU) or ``MUJOCO_GL=osmesa`` (CPU) set in the environment.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from aquaml.env import make_env
from aquaml.env.driver import is_class_path
from aquaml.tools.console import check_output
from aquaml.tools.imports import optional_import

if TYPE_CHECKING:  # the sampler loads JAX: the command line checks a video's path before that
    from aquaml.sampler import Policy

FORMATS = (".mp4", ".gif")


class FrameRecorder(gym.Wrapper):
    """Hands the frame after each reset and step to ``sink``: an episode of T steps gives T + 1 frames."""

    def __init__(self, env: gym.Env, sink) -> None:
        super().__init__(env)
        self.sink = sink

    def reset(self, **kwargs):
        out = self.env.reset(**kwargs)
        self.sink(np.asarray(self.env.render()))
        return out

    def step(self, action):
        out = self.env.step(action)
        self.sink(np.asarray(self.env.render()))
        return out


class VideoFile:
    """Frames into an MP4 (H.264 through imageio's ffmpeg, streamed: memory stays flat however
    long the episode) or a GIF (Pillow; it keeps the frames until the end and merges identical
    consecutive ones into one of their summed delay). Written beside ``out`` and renamed into
    place by :meth:`finish`, so a crash leaves no half-written video."""

    def __init__(self, out: Path, fps: int = 30) -> None:
        self.out, self.fps, self.frames = out, fps, 0
        self.tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
        self._writer = None
        self._images: list = []

    def append(self, frame: np.ndarray) -> None:
        if frame.ndim != 3:
            raise ValueError(f"the env rendered an array of shape {frame.shape}, not an rgb_array frame")
        self.frames += 1
        if self.out.suffix.lower() == ".gif":
            from PIL import Image

            self._images.append(Image.fromarray(frame))
            return
        if self._writer is None:
            imageio = optional_import("imageio.v2", "an MP4 video", "plot")
            self.out.parent.mkdir(parents=True, exist_ok=True)
            # macro_block_size=2: H.264's 4:2:0 needs even sizes; odd ones are padded by a pixel
            self._writer = imageio.get_writer(self.tmp, fps=self.fps, codec="libx264", macro_block_size=2,
                                              format="FFMPEG")
        with warnings.catch_warnings():  # ffmpeg is a separate program: JAX's threads are not forked into it
            warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
            self._writer.append_data(frame)

    def finish(self, keep: bool = True) -> None:
        """Close the file and move it into place (``keep``) or remove it."""
        try:
            if self._writer is not None:
                self._writer.close()
            elif self._images and keep:
                self.out.parent.mkdir(parents=True, exist_ok=True)
                delay = 10 * max(1, round(100 / self.fps))  # GIF delays are whole centiseconds
                self._images[0].save(self.tmp, save_all=True, append_images=self._images[1:], duration=delay, loop=0)
            if keep:
                if not self.frames:
                    raise ValueError("the env rendered no frame")
                os.replace(self.tmp, self.out)
        finally:
            self.tmp.unlink(missing_ok=True)


def check_video_path(path: str | Path) -> Path:
    """The video's path, refused before any work unless it ends in .mp4 or .gif."""
    return check_output(path, FORMATS, "videos")


def record_video(policy: Policy, env_id: str, out: str | Path, episodes: int = 1,
                 first_episode: int = 0) -> tuple[int, np.ndarray]:
    """Render ``episodes`` of ``policy``'s evaluation episodes (by default the first ones, which
    training's evaluations and ``aquaml eval`` play) on Gymnasium env ``env_id`` into ``out``;
    returns ``(frames written, episode returns)``."""
    out = check_video_path(out)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders off-screen without probing for a display
    if episodes <= 0:
        raise ValueError(f"--episodes must be positive, got {episodes}")
    if not isinstance(env_id, str) or is_class_path(env_id):
        raise ValueError(f"--video needs a Gymnasium env id with rgb_array rendering; this run's env is {env_id!r}")
    video = VideoFile(out)

    def factory():
        env = make_env(env_id, render_mode="rgb_array")
        video.fps = int(env.env.metadata.get("render_fps") or 30)
        env.env = FrameRecorder(env.env, video.append)  # the wrapped Gymnasium env hands over what it renders
        return env

    evaluator = policy.evaluator(env_factory=factory)
    done = False
    try:
        returns, _ = evaluator(policy.params, episodes, first_episode)
        done = True
    finally:
        evaluator.close()
        video.finish(keep=done)
    return video.frames, returns
