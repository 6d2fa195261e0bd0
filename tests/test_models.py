import keras
import numpy as np
import optax
import pytest

from aquaml.model import MLPActor, MLPCritic, ModelContractError, build_actor, build_critic, build_model, make_optimizer
from helpers import TinyActor, TinyQ

OBS = {"obs": (3,)}
CRITIC_IN = {"obs": (3,), "action": (1,)}


def actor_variant(**changes):
    """A TinyActor subclass with attributes changed (None deletes) or call replaced."""
    call = changes.pop("call", None)

    class Variant(TinyActor):
        def __init__(self):
            super().__init__()
            self.d1 = keras.layers.Dense(8, activation="relu")
            for k, v in changes.items():
                if v is None:
                    object.__delattr__(self, k) if k in self.__dict__ else None
                    setattr(self, k, None)
                else:
                    setattr(self, k, v)

    if call is not None:
        Variant.call = call
    return Variant


def test_valid_models_build():
    actor = build_actor(TinyActor, "actor", OBS, action_shape=(1,))
    assert actor.input_names == ("obs",) and actor.output_info == {"action": (1,)}
    assert isinstance(actor.optimizer, optax.GradientTransformation)
    critic = build_critic(TinyQ, "qf1", CRITIC_IN)
    assert critic.input_names == ("obs", "action")


@pytest.mark.parametrize("changes, match", [
    (dict(input_name=None), r"actor model Variant: attribute 'input_name' is missing.*self.input_name ="),
    (dict(learning_rate=None), "attribute 'learning_rate' is missing"),
    (dict(optimizer=None), "attribute 'optimizer' is missing"),
    (dict(optimizer="Adamax"), r"optimizer = 'Adamax' is not a known optimizer; use one of Adam, AdamW, SGD, RMSprop"),
    (dict(input_name=("pos",)), r"input_name lists \['pos'\] which the environment does not provide"),
    (dict(output_info={"mean": (1,)}), "output_info must be a dict .* containing 'action'"),
    (dict(output_info={"action": (2,)}), r"output_info\['action'\] = \(2,\) but the environment's actions have shape \(1,\)"),
    (dict(output_info={"action": (1,), "log_std": (1,)}), r"call\(\) returned 1 outputs but output_info declares 2"),
    (dict(learning_rate=-1.0), "must be positive"),
])
def test_actor_contract_violations_name_model_attribute_and_fix(changes, match):
    with pytest.raises(ModelContractError, match=match):
        build_actor(actor_variant(**changes), "actor", OBS, action_shape=(1,))


def test_output_shape_mismatch():
    def call(self, obs):
        return (keras.ops.concatenate([self.mu(self.d1(obs))] * 2, axis=-1),)

    with pytest.raises(ModelContractError, match=r"output 'action' has shape \(2,\) per sample but output_info declares \(1,\)"):
        build_actor(actor_variant(call=call), "actor", OBS)


def test_call_arity_must_match_input_name():
    def call(self, obs, hidden):
        return (self.mu(self.d1(obs)),)

    with pytest.raises(ModelContractError, match=r"call\(\) takes 2 inputs but input_name lists 1"):
        build_actor(actor_variant(call=call), "actor", OBS)


def test_model_must_be_keras():
    class NotKeras:
        pass

    with pytest.raises(ModelContractError, match="must subclass keras.Model"):
        build_actor(NotKeras, "actor", OBS)


def test_reset_is_required():
    class NoReset(TinyQ):
        reset = None

    with pytest.raises(ModelContractError, match=r"method reset\(\) is missing"):
        build_critic(NoReset, "qf1", CRITIC_IN)


def test_q_network_contract():
    class TupleQ(TinyQ):
        def call(self, obs, action):
            return (super().call(obs, action),)

    with pytest.raises(ModelContractError, match="qf1 model TupleQ: a Q-network's call"):
        build_critic(TupleQ, "qf1", CRITIC_IN)

    class WideQ(TinyQ):
        def __init__(self):
            super().__init__()
            self.q = keras.layers.Dense(3)

    with pytest.raises(ModelContractError, match=r"Q-values of shape \(3,\)"):
        build_critic(WideQ, "qf2", CRITIC_IN)


def test_call_failure_reports_input_shapes():
    class Broken(TinyQ):
        def call(self, obs, action):
            return self.q(keras.ops.matmul(obs, keras.ops.ones((5, 1))))

    with pytest.raises(ModelContractError, match=r"call\(\) failed on inputs \{'obs': \(None, 3\)"):
        build_critic(Broken, "qf1", CRITIC_IN)


def test_default_models_and_state_outputs():
    actor = build_actor(MLPActor(("obs",), (2,), (16,)), "actor", OBS, action_shape=(2,))
    assert set(actor.output_info) == {"action", "log_std"} and actor.state_outputs == {}
    critic = build_critic(MLPCritic(("obs", "action"), (16,)), "qf1", {"obs": (3,), "action": (2,)})
    assert critic.fn.apply(critic.fn.init_params(), {"obs": np.zeros((4, 3), np.float32),
                                                     "action": np.zeros((4, 2), np.float32)}).shape == (4, 1)


def test_recurrent_actor_declares_state_outputs():
    class RecurrentActor(keras.Model):
        def __init__(self):
            super().__init__()
            self.cell = keras.layers.Dense(4, activation="tanh")
            self.mu = keras.layers.Dense(1)
            self.input_name = ("obs", "hidden")
            self.output_info = {"action": (1,), "hidden": (4,)}
            self.learning_rate, self.optimizer = 1e-3, "Adam"

        def call(self, obs, hidden):
            h = self.cell(keras.ops.concatenate([obs, hidden], axis=-1))
            return self.mu(h), h

        def reset(self):
            pass

    spec = build_actor(RecurrentActor, "actor", OBS)
    assert spec.state_outputs == {"hidden": (4,)}


def test_make_optimizer_accepts_names_and_optax():
    for name in ("Adam", "adamw", "SGD", "RMSprop"):
        assert isinstance(make_optimizer(name, 1e-3), optax.GradientTransformation)
    tx = optax.lamb(1e-3)
    assert make_optimizer(tx, 1.0) is tx


def test_batchnorm_state_is_refused_with_a_fix():
    class BN(TinyQ):
        def __init__(self):
            super().__init__()
            self.bn = keras.layers.BatchNormalization()

        def call(self, obs, action):
            return self.q(self.bn(self.d1(keras.ops.concatenate([obs, action], axis=-1))))

    with pytest.raises(TypeError, match="non-trainable state .*moving_mean.*LayerNormalization"):
        build_critic(BN, "qf1", CRITIC_IN)


def test_q_network_must_read_the_action():
    class StateOnly(TinyQ):
        def __init__(self):
            super().__init__()
            self.input_name = ("obs",)

        def call(self, obs):
            return self.q(self.d1(obs))

    with pytest.raises(ModelContractError, match="lacks 'action'"):
        build_critic(StateOnly, "qf1", CRITIC_IN)


def test_generic_models_return_outputs_numbers_and_carry_state_only_when_recurrent():
    encoder = build_model(MLPCritic(("obs",), (8,), outputs=4), "encoder", OBS, outputs=4)
    assert encoder.output_info == {} and encoder.input_names == ("obs",)
    with pytest.raises(ModelContractError, match=r"encoder model MLPCritic: .* \(4,\) per sample; expected \(2,\)"):
        build_model(MLPCritic(("obs",), (8,), outputs=4), "encoder", OBS, outputs=2)

    class Disc(keras.Model):
        def __init__(self):
            super().__init__()
            self.logit, self.cell = keras.layers.Dense(1), keras.layers.Dense(4)
            self.input_name, self.output_info = ("obs", "hidden"), {"logit": (1,), "hidden": (4,)}
            self.learning_rate, self.optimizer = 1e-3, "Adam"

        def call(self, obs, hidden):
            x = keras.ops.concatenate([obs, hidden], axis=-1)
            return self.logit(x), self.cell(x)

        def reset(self):
            pass

    assert build_model(Disc, "discriminator", CRITIC_IN, recurrent=True).state_outputs == {"hidden": (4,)}
    with pytest.raises(ModelContractError, match="must not declare output_info .* only in a discriminator role"):
        build_model(Disc, "value", CRITIC_IN)
