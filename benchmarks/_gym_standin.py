"""A stand-in for the two `gym` environments DyNet's reinforcement-learning examples are
run on here (gym is not installed and nothing is downloaded): `gym.make("CartPole-v1")`,
the cart-pole balancing task (Barto, Sutton & Anderson 1983; gym's constants and Euler
step, 500 steps per episode), and `gym.make("Pendulum-v0")`, the inverted pendulum swing-up
(continuous torque in [-2, 2], 200 steps per episode). `dynet_programs.py` writes it beside
the programs as `gym.py`. Each environment draws its start states from its own seeded
generator, so both backends meet the same episodes; rendering does nothing."""

import math

import numpy as np


class _Space:
    def __init__(self, shape=None, n=None):
        self.shape = shape
        self.n = n


class CartPole:
    _max_episode_steps = 500

    def __init__(self, seed=0):
        self.observation_space = _Space(shape=(4,))
        self.action_space = _Space(shape=(), n=2)
        self._rng = np.random.RandomState(seed)
        self._state = np.zeros(4)

    def reset(self):
        self._state = self._rng.uniform(-0.05, 0.05, size=4)
        return self._state.copy()

    def step(self, action):
        x, x_dot, theta, theta_dot = self._state
        force = 10.0 if int(action) == 1 else -10.0
        cos, sin = math.cos(theta), math.sin(theta)
        masspole, total_mass, half_length, tau = 0.1, 1.1, 0.5, 0.02
        temp = (force + masspole * half_length * theta_dot ** 2 * sin) / total_mass
        theta_acc = (9.8 * sin - cos * temp) / (half_length * (4.0 / 3.0 - masspole * cos ** 2 / total_mass))
        x_acc = temp - masspole * half_length * theta_acc * cos / total_mass
        x, x_dot = x + tau * x_dot, x_dot + tau * x_acc
        theta, theta_dot = theta + tau * theta_dot, theta_dot + tau * theta_acc
        self._state = np.array([x, x_dot, theta, theta_dot])
        done = abs(x) > 2.4 or abs(theta) > 12 * 2 * math.pi / 360
        return self._state.copy(), 1.0, done, {}

    def render(self):
        pass


class Pendulum:
    _max_episode_steps = 200

    def __init__(self, seed=0):
        self.observation_space = _Space(shape=(3,))
        self.action_space = _Space(shape=(1,))
        self._rng = np.random.RandomState(seed)
        self._theta = self._theta_dot = 0.0

    def _observation(self):
        return np.array([math.cos(self._theta), math.sin(self._theta), self._theta_dot])

    def reset(self):
        self._theta, self._theta_dot = self._rng.uniform([-math.pi, -1.0], [math.pi, 1.0])
        return self._observation()

    def step(self, action):
        u = float(np.clip(np.ravel(action)[0], -2.0, 2.0))
        theta, theta_dot = self._theta, self._theta_dot
        angle = (theta + math.pi) % (2 * math.pi) - math.pi
        cost = angle ** 2 + 0.1 * theta_dot ** 2 + 0.001 * u ** 2
        theta_dot = theta_dot + (-3 * 10.0 / 2 * math.sin(theta + math.pi) + 3.0 * u) * 0.05
        self._theta = theta + theta_dot * 0.05
        self._theta_dot = float(np.clip(theta_dot, -8.0, 8.0))
        return self._observation(), -cost, False, {}

    def render(self):
        pass


def make(name):
    envs = {"CartPole-v1": CartPole, "Pendulum-v0": Pendulum}
    if name not in envs:
        raise ValueError(f"gym stand-in: no environment {name!r}; this stand-in has {sorted(envs)}")
    return envs[name]()
