"""``aquaml train ALGO ENV ...``, ``aquaml eval RUN_DIR``, ``aquaml collect RUN_DIR``, ``aquaml export
RUN_DIR`` and ``aquaml params [ALGO [ENV]]``: the commands that train a run, use one, and list the
settings.

Each checks its arguments before JAX loads (the algorithm's name and its ``--set`` keys, the
environment id, the run folder), so a mistake is answered at once. A ``RUN_DIR`` may also be a
folder of runs (its newest run) or ``<folder>/latest`` (:func:`aquaml.starter.run_dirs.find_run`).
"""
from __future__ import annotations

import argparse

import numpy as np

from aquaml.starter.run_dirs import find_run
from aquaml.tools.console import NORMAL, VERBOSE, add_verbosity, assignments, fail, first_line, verbosity
from aquaml.tools.imports import missing_extra, portable_reference, require


def _train(args) -> int:
    from aquaml.algorithm.parameters import epochs_for, max_steps
    from aquaml.algorithm.registry import BUILTINS, check_name, parameters_of
    from aquaml.env import make_env

    # every check that needs no JAX comes first: a mistake is answered in a fraction of a second
    if args.steps is not None and args.steps <= 0:
        return fail(f"--steps must be positive, got {args.steps}")
    check_name(args.algo)
    cap = max_steps()
    generator, params = None, None
    preset = None
    if args.resume:
        if args.set or args.seed is not None or args.reward_model or args.preset:
            return fail("--resume continues a run with its own parameters; drop --set/--seed/--reward-model/--preset "
                         "(only --steps may change)")
        args.resume = str(find_run(args.resume))
        if cap is not None:  # the run's own total may be far beyond the cap
            _cap_steps(args, args.steps, cap)
    else:
        sets = assignments(args.set)
        generator = sets.pop("generator", None)  # gail/airl: the variant with that generator (gail_ppo, ...)
        preset = _preset(args, sets)
        params = parameters_of(args.algo, generator)()
        if preset is not None:
            try:
                params = params.with_strings(preset.values)
            except (TypeError, ValueError) as error:
                return fail(f"preset file {preset.file}, {preset.env}: {error}")
            if args.steps is None and preset.steps is not None:
                args.steps = preset.steps
        params = params.with_strings(sets)
        changes = {"seed": args.seed} if args.seed is not None else {}
        if cap is not None:
            _cap_steps(args, args.steps or params.total_steps, cap)
        if args.steps is not None:
            changes["n_epochs"] = epochs_for(params, args.steps)
        if getattr(params, "expert", ""):  # dagger: the run recorded is the one found now, not a later newest
            changes["expert"] = str(find_run(params.expert))
        params = params.replace(**changes)
        if args.reward_model:
            args.reward_model = str(find_run(args.reward_model))
        builtin = BUILTINS.get(args.algo.lower())
        if builtin is None or builtin.needs_env:  # the VAE's ENV only names where its data came from
            make_env(args.env).close()
    return _train_checked(args, generator, params, preset)


def _preset(args, sets: dict[str, str]):
    """The preset ``aquaml train`` applies (``--preset``: a file, or ``none``), announced in one line;
    where the algorithm's built-in file has the environment under another version only, that is said."""
    from aquaml.algorithm.presets import PresetError, find_preset, other_versions

    preset = find_preset(args.algo, args.env, args.preset)
    if preset is None and args.preset is not None and args.preset.lower() != "none":
        raise PresetError(f"preset file {args.preset} has no entry for {args.env}")
    if verbosity(args) < NORMAL:
        return preset
    if preset is not None and (preset.values or (preset.steps and args.steps is None)):
        print(preset.announce(sets, steps_given=args.steps is not None))
    elif preset is None and args.preset is None:
        others = other_versions(args.algo, args.env)
        if others:
            print(f"aquaml: no {args.algo.lower()} preset for {args.env}, the defaults apply (presets exist for "
                  f"{', '.join(others)})")
    return preset


def _train_checked(args, generator: str | None, params, preset=None) -> int:
    """``aquaml train`` once its arguments are checked: from here on JAX loads."""
    from aquaml.algorithm.feeders import feeder_of
    from aquaml.algorithm.registry import resolve_algorithm, with_generator
    from aquaml.starter import RLTaskStarter

    algo = resolve_algorithm(args.algo)
    if generator is not None:
        algo = with_generator(algo, generator)
    if not feeder_of(algo).needs_env:  # a generative model of dataset fields (the VAE)
        return _train_generative(algo, params, args)
    if args.resume:
        starter = RLTaskStarter.from_run_dir(args.resume, steps=args.steps, n_workers=args.workers,
                                             progress=verbosity(args))
        variants = {algo, *(resolve_algorithm(n) for n in getattr(algo, "generators", {}).values())}
        if starter.algo_cls not in variants or portable_reference(args.env) != starter.config_env:  # gail: gail_ppo too
            return fail(f"{args.resume} is a {starter.algo_cls.name} run on {starter.config_env}, "
                         f"not {args.algo} on {args.env}")
    else:
        starter = RLTaskStarter(args.env, None, algo, params, name=args.name, run_root=args.run_root,
                                n_workers=args.workers, reward_model=args.reward_model, progress=verbosity(args),
                                preset=preset.record() if preset is not None else None)
    _say_rounded(args, starter.params, feeder_of(starter.algo_cls).steps_envs)
    try:
        summary = starter.run()
    finally:
        starter.close()
    print(f"final evaluation return: {summary.final_eval_return:.2f}")
    print(f"run directory: {summary.run_dir}")
    return 0


def _train_generative(algo, params, args) -> int:
    """``aquaml train vae ENV --set dataset=PATH``: ENV names where the data came from."""
    from aquaml.algorithm.parameters import epochs_for
    from aquaml.starter.generative import GenerativeTaskStarter
    from aquaml.starter.run_folder import RunFolder

    if args.resume:
        folder = RunFolder.open(args.resume)
        params = algo.Parameters.from_kwargs(**folder.config["parameters"])
        if args.steps is not None:
            params = params.replace(n_epochs=epochs_for(params, args.steps))
        starter = GenerativeTaskStarter(algo, params, env=folder.config.get("env"), name=folder.config["name"],
                                        run_root=folder.path.parent.parent, resume=folder.path,
                                        progress=verbosity(args))
    else:
        starter = GenerativeTaskStarter(algo, params, env=args.env, name=args.name, run_root=args.run_root,
                                        progress=verbosity(args))
    _say_rounded(args, starter.params, steps_envs=False)
    summary = starter.run()
    print(f"final held-out ELBO: {summary.final_heldout_elbo:.3f} nats, reconstruction error "
          f"{summary.final_heldout_recon_error:.3f} of the data variance")
    print(f"run directory: {summary.run_dir}")
    return 0


def _eval(args) -> int:
    if args.episodes is not None and args.episodes <= 0:
        return fail(f"--episodes must be positive, got {args.episodes}")
    if args.video:
        from aquaml.apps.video import check_video_path

        if check_video_path(args.video).suffix.lower() == ".mp4":
            require(("imageio", "imageio_ffmpeg"), "aquaml eval --video FILE.mp4", "plot")
    args.run_dir = str(find_run(args.run_dir))
    from aquaml.sampler import EVAL_FIRST_EPISODE
    from aquaml.starter.loading import load_run

    # read-only: weights from the newest complete checkpoint; the run folder is not touched
    run = load_run(args.run_dir)
    run.close()
    first = EVAL_FIRST_EPISODE if args.held_out else 0
    if args.video:
        from aquaml.apps.video import record_video

        frames, returns = record_video(run.policy(), run.config.get("env"), args.video, args.episodes or 1, first)
        print(f"video of {len(returns)} episode(s), return {np.mean(returns):.2f}: {frames} frames in {args.video}")
        return 0
    # by default the episodes training evaluated on, so the number is the one it logged
    trained = int(run.config["parameters"].get("calculate_episodes", 10))
    episodes = args.episodes or trained
    policy = run.policy()
    evaluator = policy.evaluator()
    try:
        returns, lengths = evaluator(policy.params, episodes, first_episode=first)
    finally:
        evaluator.close()
    if verbosity(args) >= VERBOSE:
        _print_episodes(returns, lengths, first)
    print(f"evaluation over {len(returns)} episodes ({_episode_range(first, episodes)}): return "
          f"{np.mean(returns):.2f} +- {np.std(returns):.2f}, length {np.mean(lengths):.1f}")
    if verbosity(args) >= NORMAL:
        print(_compared_with_training(run.training_evaluation(), trained, first, episodes))
    return 0


def _cap_steps(args, steps: int | None, cap: int) -> None:
    """``$AQUAML_MAX_STEPS`` (docs/outputs.md): ``--steps`` at most ``cap`` (None: a resume to the run's own
    total, which may be far beyond it), said in one line when it cuts the steps asked for."""
    from aquaml.algorithm.parameters import MAX_STEPS

    args.capped = steps is not None and steps > cap
    if args.capped and verbosity(args) >= NORMAL:
        print(f"{MAX_STEPS}={cap}: this run trains {cap:,} steps (at least one epoch) instead of {steps:,}")
    args.steps = cap if steps is None else min(steps, cap)


def _say_rounded(args, params, steps_envs: bool) -> None:
    """One line when ``--steps`` is not a whole number of epochs, saying how many steps run instead."""
    if getattr(args, "capped", False):  # _cap_steps said what runs
        return
    if args.steps is not None and params.total_steps != args.steps and verbosity(args) >= NORMAL:
        unit = "env steps" if steps_envs else "gradient steps"
        epochs = f"{params.n_epochs:,} epoch{'s' if params.n_epochs > 1 else ''}"
        print(f"--steps {args.steps:,} is not a whole number of epochs: training runs {params.total_steps:,} {unit} "
              f"({epochs} of {params.total_steps // params.n_epochs:,})")


def _print_episodes(returns, lengths, first: int) -> None:
    for k, (ret, length) in enumerate(zip(returns, lengths)):
        print(f"episode {first + k:,}: return {ret:.2f}, length {int(length)}")


def _episode_range(first: int, episodes: int) -> str:
    return f"episode {first:,}" if episodes == 1 else f"episodes {first:,}-{first + episodes - 1:,}"


def _compared_with_training(logged: tuple[int, float] | None, trained: int, first: int, episodes: int) -> str:
    """One line on the evaluation training logged for the same checkpoint, and why it differs if it can."""
    if logged is None:
        return "training logged no evaluation of this checkpoint"
    steps, mean = logged
    line = f"training's evaluation of this checkpoint at {steps:,} steps: {mean:.2f} over {_episode_range(0, trained)}"
    differs = [what for what, same in (("held-out episodes", first == 0),
                                       (f"{episodes} episodes, not {trained}", episodes == trained)) if not same]
    return line + (" (the same episodes)" if not differs else f" (differs: {', '.join(differs)})")


def _collect(args) -> int:
    if args.from_buffer and (args.episodes is not None or args.stochastic):
        return fail("--from-buffer writes the run's replay buffer; drop --episodes/--stochastic")
    if not args.from_buffer and (args.episodes is None or args.episodes <= 0):
        return fail("--episodes must be a positive number of episodes to record")
    args.run_dir = str(find_run(args.run_dir))
    from aquaml.apps.collect import collect
    from aquaml.data import save_data
    from aquaml.starter.loading import replay_dataset

    if args.from_buffer:
        dataset = replay_dataset(args.run_dir)
        save_data(args.out, dataset)
    else:
        dataset = collect(args.run_dir, args.episodes, args.out, deterministic=not args.stochastic)
    returns = dataset.returns()
    if verbosity(args) >= VERBOSE:
        _print_episodes(returns, dataset.lengths, int(dataset.metadata.get("first_episode", 0)))
    print(f"collected {dataset.n_episodes} episodes ({dataset.n_steps} steps), return {returns.mean():.2f} "
          f"+- {returns.std():.2f}: {args.out}")
    return 0


def _export(args) -> int:
    if not args.out.endswith(".onnx"):
        return fail(f"--out {args.out}: name the file PATH.onnx")
    require(("onnx", "onnxruntime"), "aquaml export", "deploy")
    args.run_dir = str(find_run(args.run_dir))
    from aquaml.apps.export import export_policy
    from aquaml.starter.loading import load_policy

    summary = export_policy(load_policy(args.run_dir), args.out)  # read-only, as eval
    print(summary.describe())
    return 0


def _params(args) -> int:
    from aquaml.apps.params import algorithm_list, describe, environment_list

    if args.envs:
        print(environment_list())
    elif args.algo is None:
        print(algorithm_list())
    else:
        print(describe(args.algo, args.env))
    return 0


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser of ``aquaml``, and each subcommand's by name (its usage errors print its own usage)."""
    parser = argparse.ArgumentParser(prog="aquaml", description="Train and evaluate AquaML agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    run_dir_help = "a run folder, a folder of runs (its newest run) or runs/NAME/latest"
    train = sub.add_parser("train", help="train an agent on a Gymnasium environment",
                           epilog="`aquaml params ALGO` lists the keys --set takes, with their types, defaults and "
                                  "docs; `aquaml params --envs` the environment ids.")
    train.add_argument("algo", help="algorithm: sac, td3, ppo, bc, dagger, td3bc, iql, gail, airl, amp, vae "
                       "(gail_ppo, airl_ppo: or --set generator=ppo), an "
                       "installed aquaml.algorithms entry point, or package.module:Class")
    train.add_argument("env", help="Gymnasium id, e.g. Pendulum-v1")
    train.add_argument("--steps", type=int, help="total environment steps, or gradient steps for offline algorithms "
                       "(bc, td3bc, iql; default: n_epochs epochs)")
    train.add_argument("--seed", type=int, help="seed of the models, the exploration and the environments (default: "
                       "the seed parameter, 0); the same seed gives the same run")
    train.add_argument("--name", help="run name (folder under --run-root)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="an algorithm parameter, repeatable (aquaml params ALGO lists them); overrides the preset")
    train.add_argument("--preset", metavar="none|FILE",
                       help="settings per environment: by default the algorithm's built-in preset for ENV where "
                            "there is one (aquaml params ALGO ENV shows it); 'none' for the bare defaults; or a "
                            "YAML file of the same format (docs/presets.md)")
    train.add_argument("--workers", type=int, default=0, metavar="K",
                       help="sampler processes over shared memory (default 0: in-process; at most n_envs)")
    train.add_argument("--resume", metavar="RUN_DIR",
                       help=f"continue a run from its latest checkpoint ({run_dir_help})")
    train.add_argument("--run-root", default="runs", help="where run folders are created (default: runs)")
    add_verbosity(train)
    train.add_argument("--reward-model", metavar="RUN_DIR",
                       help="train on the learned reward of this run (AIRL's) instead of the env's; evaluations "
                            "report the env's own return")
    ev = sub.add_parser("eval", help="evaluate the latest checkpoint of a run deterministically")
    ev.add_argument("run_dir", metavar="RUN_DIR", help=run_dir_help)
    add_verbosity(ev)
    ev.add_argument("--episodes", type=int, help="episodes to run (default: as many as each training evaluation, "
                    "calculate_episodes, so the return is the one training logged; 1 with --video)")
    ev.add_argument("--held-out", action="store_true",
                    help="play episodes no training evaluation played (numbered from 1,000,000) instead of its own")
    ev.add_argument("--video", metavar="FILE", help="render the episodes off-screen into FILE.mp4 or FILE.gif")
    co = sub.add_parser("collect", help="record a trained agent's episodes as a dataset (or write its replay buffer)")
    co.add_argument("run_dir", metavar="RUN_DIR", help=run_dir_help)
    add_verbosity(co)
    co.add_argument("--episodes", type=int, help="episodes to record (seeded, as evaluations are)")
    co.add_argument("--out", required=True, metavar="PATH",
                    help="PATH.npz, PATH.h5/.hdf5, or minari:NAME-v0 (a Minari dataset)")
    co.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic ones")
    co.add_argument("--from-buffer", action="store_true",
                    help="write the replay buffer of the run's latest checkpoint instead (a 'replay' dataset)")
    ex = sub.add_parser("export", help="write a run's deterministic policy as an ONNX model (docs/deploy.md)")
    ex.add_argument("run_dir", metavar="RUN_DIR", help=run_dir_help)
    ex.add_argument("--out", required=True, metavar="PATH.onnx", help="the ONNX file to write")
    pa = sub.add_parser("params", help="list the algorithms, an algorithm's parameters (type, default, doc) or the "
                        "environment ids")
    pa.add_argument("algo", nargs="?", metavar="ALGO", help="the algorithm whose parameters to list (none: list "
                    "the algorithms)")
    pa.add_argument("env", nargs="?", metavar="ENV", help="the environment the parameters are for")
    pa.add_argument("--envs", action="store_true", help="list every environment id instead")
    sub.add_parser("tune", add_help=False, help="tune parameters with Optuna (aquaml tune -h)")
    sub.add_parser("plot", add_help=False, help="learning curves, aggregate scores, tuning and rosbag figures "
                   "(aquaml plot -h)")
    return parser, sub.choices


def parse(argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed; words that no option takes are reported by the subcommand's parser, with
    its usage (argparse would report them with the top level's)."""
    parser, commands = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        hint = ""
        if any("=" not in pair for pair in getattr(args, "set", [])):
            hint = " (--set takes KEY=VALUE as one word, e.g. --set batch_size=64)"
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    return args


def main(argv: list[str]) -> int:
    """Run ``train``, ``eval``, ``collect``, ``export`` or ``params`` with ``argv`` (the words after ``aquaml``)."""
    args = parse(argv)
    try:
        return {"train": _train, "eval": _eval, "collect": _collect, "export": _export,
                "params": _params}[args.command](args)
    except (OSError, ValueError, TypeError, KeyError, ImportError) as e:
        return fail(first_line(missing_extra(e) or e))
