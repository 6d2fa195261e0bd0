"""Home of the seed's ``AquaML.*`` submodules (``BaseClass``, ``DataType``, ``Tool``, ``rlalgo``,
``starter``), thin re-exports from :mod:`aquaml`; and the seed's ``RLTaskStarter``, which keeps
the seed's attribute names.

Import them as ``AquaML.<name>``: the top-level module ``AquaML`` (``AquaML.py``) points its
``__path__`` here. They do not live in an ``AquaML/`` directory because ``AquaML/`` and
``aquaml/`` differ only in case, and case-insensitive file systems (the defaults on macOS and
Windows) merge the two.
"""

# The seed's scripts read the parts of a run straight off the starter (``starter.env``,
# ``starter.models``, ``starter.buffer``, ``starter.env_steps``, ...). :class:`RLTaskStarter` here,
# a subclass of :class:`aquaml.starter.RLTaskStarter`, keeps those names as read-only views of
# where the parts live now (``starter.agent``, ``starter.loop``, ``starter.feeder``,
# ``starter.topology``); ``aquaml.RLTaskStarter`` and ``AquaML.starter.RLTaskStarter`` are this
# class. (It is defined here, not in ``starter/RLTaskStarter.py``: the seed's files are also
# loaded under the name ``AquaML``, which would define the class twice.)

from aquaml.starter import RLTaskStarter as _Starter


def _view(path: str, doc: str) -> property:
    first, *rest = path.split(".")

    def get(self):
        value = getattr(self, first)
        for name in rest:
            value = getattr(value, name)
        return value

    return property(get, doc=doc)


class RLTaskStarter(_Starter):
    """:class:`aquaml.starter.RLTaskStarter` with the seed's attribute names."""

    env = _view("agent.env", "the training environment")
    env_name = _view("agent.env_name", "the environment's name")
    models = _view("agent.models", "role -> checked model")
    model_classes = _view("agent.model_classes", "role -> the user's model class (None: default)")
    state_outputs = _view("agent.state_outputs", "the actor's recurrent state outputs")
    episode_length = _view("agent.episode_length", "the time limit per episode")
    action_space = _view("agent.action_space", "the environment's action space")
    world_comm = _view("topology.world_comm", "the job's MPI communicator")
    mpi_comm = _view("topology.mpi_comm", "this rank's group communicator")
    learner_comm = _view("topology.learner_comm", "the data-parallel learners' communicator")
    is_sampler_rank = _view("topology.is_sampler_rank", "True on ranks that only step environments")
    writes_run = _view("topology.writes_run", "whether this process writes the run folder")
    total_epochs = _view("params.n_epochs", "epochs of the whole run")
    epoch = _view("loop.counters.epoch", "epochs done")
    env_steps = _view("loop.counters.env_steps", "environment steps done")
    grad_steps = _view("loop.counters.grad_steps", "gradient steps done")
    eval_history = _view("loop.counters.eval_history", "(env steps, mean evaluation return) so far")
    train_returns = _view("loop.counters.train_returns", "returns of finished training episodes")
    act_key = _view("loop.act_key", "the JAX key the acting policy draws from")
    rng = _view("loop.rng", "the numpy generator of batches and warm-up actions")
    buffer = _view("feeder.buffer", "the replay buffer of off-policy runs")
    learner = _view("feeder", "the feeder (called the learner before)")



__all__ = ["RLTaskStarter"]
