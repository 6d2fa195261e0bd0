"""ROS bags without ROS: bags written here with rosbags' own writers (ROS 1, ROS 2 sqlite3 and
mcap) read back into arrays, plotted, and turned into a dataset on a common clock."""
import argparse
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rosbags")

from rosbags.rosbag1 import Writer as Writer1  # noqa: E402
from rosbags.rosbag2 import StoragePlugin, Writer as Writer2  # noqa: E402
from rosbags.typesys import Stores, get_types_from_msg, get_typestore  # noqa: E402

from aquaml.data import Dataset, DatasetError, from_rosbag, load_data, save_data  # noqa: E402
from aquaml.data.rosbag import BagError, BagNotFoundError, open_bag, read_fields, topics  # noqa: E402
from aquaml.plot import rosbag as plot_rosbag  # noqa: E402

START_NS = 1_700_000_000_000_000_000  # a realistic epoch: float64 seconds must keep the steps
HEADER_LAG_NS = 3_000_000  # header stamps 3 ms before reception, so the two clocks differ
SAMPLE_MSG = "float64[3] values\nint32 count\nstring label\n"
KINDS = ("ros1", "sqlite3", "mcap")


def odom_ns(phase):  # 50 Hz for 4 s
    return START_NS + np.arange(200, dtype=np.int64) * 20_000_000 + int(phase * 1e7)


def cmd_ns(phase):  # 10 Hz, starting late and ending early
    return START_NS + 250_000_000 + np.arange(36, dtype=np.int64) * 100_000_000 + int(phase * 1e7)


def reward_ns(phase):  # 25 Hz
    return START_NS + np.arange(100, dtype=np.int64) * 40_000_000 + int(phase * 1e7)


def expected(phase):
    """What a bag of this phase holds: ``topic -> (receive ns, {field: values})``."""
    s = (odom_ns(phase) - START_NS) / 1e9
    c = (cmd_ns(phase) - START_NS) / 1e9
    r = (reward_ns(phase) - START_NS) / 1e9
    radius = 1.0 + phase
    return {
        "/odom": (odom_ns(phase), {"pose.pose.position.x": radius * np.cos(2 * s + phase),
                                   "pose.pose.position.y": radius * np.sin(2 * s + phase),
                                   "pose.pose.position.z": 0.25 * s, "twist.twist.linear.x": 2 * radius + 0 * s}),
        "/cmd_vel": (cmd_ns(phase), {"linear.x": 0.5 * np.sin(3 * c + phase), "angular.z": np.cos(2 * c)}),
        "/reward": (reward_ns(phase), {"data": -(r - 2) ** 2}),
        "/sample": (reward_ns(phase), {"values": np.stack([r, 2 * r, -r], 1), "count": np.arange(100, dtype=np.int32)}),
    }


def write_bag(path: Path, kind: str, phase: float) -> Path:
    ts = get_typestore(Stores.ROS1_NOETIC if kind == "ros1" else Stores.LATEST)
    ts.register(get_types_from_msg(SAMPLE_MSG, "test_msgs/msg/Sample"))  # a custom type stored in the bag
    T = ts.types
    data = expected(phase)
    ros1 = kind == "ros1"

    def header(ns):
        ns = int(ns) - HEADER_LAG_NS
        stamp = T["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
        extra = {"seq": 0} if ros1 else {}
        return T["std_msgs/msg/Header"](stamp=stamp, frame_id="odom", **extra)

    def vec(name, x, y, z):
        return T[name](x=float(x), y=float(y), z=float(z))

    messages = []
    t, f = data["/odom"]
    for i, ns in enumerate(t):
        pose = T["geometry_msgs/msg/Pose"](position=vec("geometry_msgs/msg/Point", f["pose.pose.position.x"][i],
                                                        f["pose.pose.position.y"][i], f["pose.pose.position.z"][i]),
                                           orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0))
        twist = T["geometry_msgs/msg/Twist"](
            linear=vec("geometry_msgs/msg/Vector3", f["twist.twist.linear.x"][i], 0, 0),
            angular=vec("geometry_msgs/msg/Vector3", 0, 0, 0))
        messages.append(("/odom", "nav_msgs/msg/Odometry", ns, T["nav_msgs/msg/Odometry"](
            header=header(ns), child_frame_id="base_link",
            pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
            twist=T["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=np.zeros(36)))))
    t, f = data["/cmd_vel"]
    for i, ns in enumerate(t):
        messages.append(("/cmd_vel", "geometry_msgs/msg/Twist", ns, T["geometry_msgs/msg/Twist"](
            linear=vec("geometry_msgs/msg/Vector3", f["linear.x"][i], 0, 0),
            angular=vec("geometry_msgs/msg/Vector3", 0, 0, f["angular.z"][i]))))
    t, f = data["/reward"]
    messages += [("/reward", "std_msgs/msg/Float64", ns, T["std_msgs/msg/Float64"](data=float(f["data"][i])))
                 for i, ns in enumerate(t)]
    t, f = data["/sample"]
    messages += [("/sample", "test_msgs/msg/Sample", ns, T["test_msgs/msg/Sample"](
        values=f["values"][i], count=int(f["count"][i]), label=f"s{i}")) for i, ns in enumerate(t)]
    messages.sort(key=lambda m: m[2])

    writer = Writer1(path) if ros1 else Writer2(path, version=9, storage_plugin=StoragePlugin[kind.upper()])
    serialize = ts.serialize_ros1 if ros1 else ts.serialize_cdr
    with writer:
        connections = {}
        for topic, msgtype, _, _ in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=ts)
        for topic, msgtype, ns, msg in messages:
            writer.write(connections[topic], int(ns), serialize(msg, msgtype))
    return path


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    """``kind -> (bag of phase 0, bag of phase 0.5)``; the ROS 2 ones as their storage files."""
    root = tmp_path_factory.mktemp("bags")
    out = {}
    for kind in KINDS:
        pair = []
        for n, phase in enumerate((0.0, 0.5)):
            path = write_bag(root / (f"run{n}_{kind}.bag" if kind == "ros1" else f"run{n}_{kind}"), kind, phase)
            pair.append(path if kind == "ros1" else next(path.glob("*.db3" if kind == "sqlite3" else "*.mcap")))
        out[kind] = tuple(pair)
    return out


MAPPING = {"rate_hz": 20,
           "observations": {"pos": ["/odom:pose.pose.position.x", "/odom:pose.pose.position.y"],
                            "vel": "/odom:twist.twist.linear.x", "sample": "/sample:values"},
           "action": ["/cmd_vel:linear.x", "/cmd_vel:angular.z"],
           "action_low": [-0.5, -1.0], "action_high": [0.5, 1.0],
           "reward": "/reward:data"}


@pytest.mark.parametrize("kind", KINDS)
def test_topics_and_fields_read_back_exactly(bags, kind):
    bag = bags[kind][0]
    assert topics(bag) == {"/cmd_vel": "geometry_msgs/msg/Twist", "/odom": "nav_msgs/msg/Odometry",
                           "/reward": "std_msgs/msg/Float64", "/sample": "test_msgs/msg/Sample"}
    for topic, (ns, fields) in expected(0.0).items():
        t, got = read_fields(bag, topic, list(fields), time="receive")
        np.testing.assert_array_equal(t, ns / 1e9)
        assert got.keys() == fields.keys()
        for k, v in fields.items():
            np.testing.assert_array_equal(got[k], v, err_msg=f"{kind} {topic} {k}")
    # auto: header.stamp where the message has one; a fixed-size array is one column per element
    t, got = read_fields(bag, "/odom", ["pose.pose.position.z", "pose.covariance[35]", "pose.covariance"])
    np.testing.assert_array_equal(t, (odom_ns(0.0) - HEADER_LAG_NS) / 1e9)
    assert got["pose.covariance"].shape == (200, 36) and got["pose.covariance[35]"].shape == (200,)
    t, got = read_fields(bag, "/sample", ["values[1]", "count"], time="auto")  # no header: receive time
    np.testing.assert_array_equal(t, reward_ns(0.0) / 1e9)
    assert got["count"].dtype == np.int32
    np.testing.assert_array_equal(got["values[1]"], expected(0.0)["/sample"][1]["values"][:, 1])
    _, every = read_fields(bag, "/odom")  # every numeric field, strings (frame_id) left out
    assert {"header.stamp.sec", "pose.pose.orientation.w", "twist.covariance"} <= every.keys()
    assert not any("frame_id" in k for k in every)


def test_a_ros2_bag_directory_reads_like_its_storage_file(bags):
    directory = bags["mcap"][0].parent
    t, got = read_fields(directory, "/cmd_vel", ["angular.z"])
    np.testing.assert_array_equal(got["angular.z"], expected(0.0)["/cmd_vel"][1]["angular.z"])
    with open_bag(directory) as bag:
        assert bag.kind == "ros2" and bag.message_counts == {"/cmd_vel": 36, "/odom": 200, "/reward": 100,
                                                             "/sample": 100}


@pytest.mark.parametrize("kind", ["ros1", "sqlite3"])
def test_plot_bags_overlays_series_and_trajectories(bags, kind, tmp_path):
    pair = [str(p) for p in bags[kind]]
    for suffix in (".png", ".svg"):
        out = tmp_path / f"fig{suffix}"
        result = plot_rosbag.plot_bags(pair, ["/odom", "/cmd_vel"], ["pose.pose.position.x", "/cmd_vel:angular.z"],
                                       out=out, time="receive")
        assert result["figure"] == out and out.stat().st_size > 1000
        assert result["trajectory"] == tmp_path / f"fig_trajectory{suffix}" and result["trajectory"].exists()
    for bag, phase in zip(pair, (0.0, 0.5)):
        data = expected(phase)
        t0 = data["/odom"][0][0] / 1e9  # the bag's first plotted message
        series = result["series"][bag]
        assert set(series) == {"/odom", "/cmd_vel"} and set(series["/odom"]) == {"pose.pose.position.x"}
        t, y = series["/cmd_vel"]["angular.z"]
        np.testing.assert_allclose(t, data["/cmd_vel"][0] / 1e9 - t0, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(y, data["/cmd_vel"][1]["angular.z"])
        np.testing.assert_array_equal(series["/odom"]["pose.pose.position.x"][1],
                                      data["/odom"][1]["pose.pose.position.x"])
        xyz = result["trajectories"][bag]["/odom"]
        np.testing.assert_array_equal(xyz, np.stack([data["/odom"][1][f"pose.pose.position.{c}"] for c in "xyz"], 1))
    assert list(result["trajectories"][pair[1]]) == ["/odom"]  # /cmd_vel has no position


def test_plot_cli_lists_and_plots(bags, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="aquaml plot")
    plot_rosbag.add_parser(parser.add_subparsers(dest="command"))
    bag = str(bags["mcap"][0])
    args = parser.parse_args(["rosbag", bag, "--list"])
    assert args.func(args) == 0
    listing = capsys.readouterr().out
    assert re.search(r"^  /odom +nav_msgs/msg/Odometry  200 msgs$", listing, re.M) and "test_msgs/msg/Sample" in listing
    out = tmp_path / "cli.png"
    args = parser.parse_args(["rosbag", bag, "--topics", "/reward,/sample", "--out", str(out)])
    assert args.func(args) == 0
    assert f"wrote {out}" in capsys.readouterr().out and out.exists()
    assert not (tmp_path / "cli_trajectory.png").exists()
    args = parser.parse_args(["rosbag", bag])
    with pytest.raises(ValueError, match="--topics"):
        args.func(args)


def resampled(t_ns, values, grid):
    return np.interp(grid, t_ns / 1e9, values)


@pytest.mark.parametrize("kind", KINDS)
def test_from_rosbag_resamples_on_the_common_clock(bags, kind, tmp_path):
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text("""
rate_hz: 20
time: receive
observations:
  pos: ["/odom:pose.pose.position.x", "/odom:pose.pose.position.y"]
  vel: /odom:twist.twist.linear.x
  sample: /sample:values
  count: /sample:count
action: ["/cmd_vel:linear.x", "/cmd_vel:angular.z"]
action_low: [-0.5, -1.0]
action_high: [0.5, 1.0]
reward: /reward:data
""")
    ds = from_rosbag(bags[kind], mapping_file)
    assert ds.n_episodes == 2
    for e, phase in enumerate((0.0, 0.5)):
        data = expected(phase)
        start = cmd_ns(phase)[0] / 1e9  # /cmd_vel starts last and ends first
        grid = start + np.arange(int(np.floor((cmd_ns(phase)[-1] - cmd_ns(phase)[0]) / 1e9 * 20 + 1e-6)) + 1) / 20
        assert len(grid) == 71 and ds.lengths[e] == 70
        ep = ds.episode(e)
        (odom_t, odom), (cmd_t, cmd), (rew_t, rew) = data["/odom"], data["/cmd_vel"], data["/reward"]
        pos = np.stack([resampled(odom_t, odom[f"pose.pose.position.{c}"], grid) for c in "xy"], 1)
        np.testing.assert_allclose(ep["observations"]["pos"], pos, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ep["observations"]["vel"][:, 0], 2 * (1 + phase), rtol=1e-6)
        values = data["/sample"][1]["values"]
        np.testing.assert_allclose(ep["observations"]["sample"],
                                   np.stack([resampled(data["/sample"][0], values[:, j], grid) for j in range(3)], 1),
                                   rtol=1e-5, atol=1e-6)
        # integers hold their last value instead of being interpolated
        held = np.searchsorted(data["/sample"][0] / 1e9, grid, side="right") - 1
        np.testing.assert_array_equal(ep["observations"]["count"][:, 0], data["/sample"][1]["count"][held])
        action = np.stack([resampled(cmd_t, cmd["linear.x"], grid[:-1]) / 0.5,
                           resampled(cmd_t, cmd["angular.z"], grid[:-1])], 1)
        np.testing.assert_allclose(ep["action"], action, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ep["reward"], resampled(rew_t, rew["data"], grid[1:]), rtol=1e-5, atol=1e-6)
        assert not ep["terminated"].any() and ep["truncated"].tolist() == [False] * 69 + [True]
    meta = ds.metadata
    assert meta["bags"] == [str(b) for b in bags[kind]] and meta["rate_hz"] == 20
    assert meta["topics"]["/odom"] == "nav_msgs/msg/Odometry" and meta["action_low"] == [-0.5, -1.0]
    ds.check_for({"pos": (2,), "vel": (1,), "sample": (3,)}, (2,))
    loaded = load_data(save_data(tmp_path / "bags.npz", ds))
    assert isinstance(loaded, Dataset) and loaded.digest() == ds.digest() and loaded.metadata == meta


def test_from_rosbag_bounds_from_the_data_and_header_time(bags):
    mapping = {k: v for k, v in MAPPING.items() if not k.startswith("action_")}
    ds = from_rosbag(bags["sqlite3"][0], mapping)  # time: auto, so /odom uses header.stamp
    cmd = expected(0.0)["/cmd_vel"][1]
    assert ds.metadata["action_low"] == [cmd["linear.x"].min(), cmd["angular.z"].min()]
    assert ds.metadata["action_high"] == [cmd["linear.x"].max(), cmd["angular.z"].max()]
    assert np.abs(ds.action).max() <= 1.0
    grid = cmd_ns(0.0)[0] / 1e9 + np.arange(71) / 20
    odom_t, odom = expected(0.0)["/odom"]
    x = resampled(odom_t - HEADER_LAG_NS, odom["pose.pose.position.x"], grid)
    np.testing.assert_allclose(ds.observations["pos"][:, 0], x, rtol=1e-5, atol=1e-6)


def fails(error, match, call, *args, **kwargs):
    """The error ``call`` raises, checked to be one line that matches."""
    with pytest.raises(error, match=match) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


def test_errors_name_the_culprit(bags, tmp_path):
    bag = bags["ros1"][0]
    damaged = tmp_path / "damaged.bag"
    damaged.write_bytes(b"#ROSBAG V2.0\n" + bytes(range(256)) * 4)
    fails(BagError, "damaged.bag: not a readable ROS 1 bag", topics, damaged)
    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"\x00garbage" * 50)
    fails(BagError, "garbage.mcap: not a readable ROS 2 bag", topics, garbage)
    missing = fails(BagNotFoundError, "nowhere.bag: no such bag", topics, tmp_path / "nowhere.bag")
    assert isinstance(missing, FileNotFoundError) and isinstance(missing, ValueError)
    (tmp_path / "notes.txt").write_text("x")
    fails(BagError, "notes.txt: not a bag", topics, tmp_path / "notes.txt")
    fails(BagError, r"no topic '/imu'; the bag has /cmd_vel, /odom, /reward, /sample", read_fields, bag, "/imu")
    fails(BagError, r"field 'linear.w' of /cmd_vel \(geometry_msgs/msg/Twist\) does not exist; its numeric fields: "
                    r"linear.x, linear.y, linear.z, angular.x", read_fields, bag, "/cmd_vel", ["linear.w"])
    fails(BagError, r"field 'label' of /sample .* is not numeric \(string\); its numeric fields: values, count",
          read_fields, bag, "/sample", ["label"])
    fails(BagError, r"'pose.pose.position' .* is a message \(geometry_msgs/msg/Point\)",
          read_fields, bag, "/odom", ["pose.pose.position"])
    fails(BagError, r"'values\[3\]' .* has 3 elements", read_fields, bag, "/sample", ["values[3]"])
    fails(BagError, "/cmd_vel .* has no header.stamp", read_fields, bag, "/cmd_vel", time="header")
    fails(BagError, "no topic '/imu'", from_rosbag, bag, {**MAPPING, "action": "/imu:linear_acceleration.x"})
    fails(DatasetError, "'/odom' is not '/topic:field'", from_rosbag, bag, {**MAPPING, "action": "/odom"})
    fails(DatasetError, "unknown key actions", from_rosbag, bag, {**MAPPING, "actions": []})
    fails(DatasetError, r"action /cmd_vel:linear.x is .* outside \[action_low, action_high\]",
          from_rosbag, bag, {**MAPPING, "action_low": [-0.1, -1.0]})
    fails(BagError, "field 'pose.pose.position.q'", plot_rosbag.plot_bags, bag, ["/odom"], ["pose.pose.position.q"],
          out=tmp_path / "x.png")
    fails(ValueError, "x.jpg: figures are written as", plot_rosbag.plot_bags, bag, ["/odom"], out=tmp_path / "x.jpg")


def test_empty_overlap_is_named(tmp_path):
    path = tmp_path / "apart.bag"
    ts = get_typestore(Stores.ROS1_NOETIC)
    Float64 = ts.types["std_msgs/msg/Float64"]
    with Writer1(path) as writer:
        a = writer.add_connection("/a", "std_msgs/msg/Float64", typestore=ts)
        b = writer.add_connection("/b", "std_msgs/msg/Float64", typestore=ts)
        for i in range(10):
            writer.write(a, START_NS + i * 10**8, ts.serialize_ros1(Float64(data=float(i)), "std_msgs/msg/Float64"))
        for i in range(10):
            writer.write(b, START_NS + 2 * 10**9 + i * 10**8,
                         ts.serialize_ros1(Float64(data=float(i)), "std_msgs/msg/Float64"))
    fails(DatasetError, r"apart.bag: the mapped topics overlap for less than one step at 10 Hz \(/a 0.00-0.90 s, "
                        r"/b 2.00-2.90 s", from_rosbag, path, {"rate_hz": 10, "observations": {"a": "/a:data"},
                                                              "action": "/b:data"})


def test_sequence_elements_and_unset_header_stamps(tmp_path):
    path = tmp_path / "joints"
    ts = get_typestore(Stores.LATEST)
    T = ts.types
    with Writer2(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        c = writer.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=ts)
        for i in range(5):  # header stamps left at 0, as publishers that skip the header leave them
            msg = T["sensor_msgs/msg/JointState"](
                header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id=""),
                name=["a", "b"], position=np.array([i, 10.0 * i]), velocity=np.zeros(2), effort=np.zeros(0))
            writer.write(c, START_NS + i * 10**8, ts.serialize_cdr(msg, "sensor_msgs/msg/JointState"))
    t, got = read_fields(path, "/joint_states", ["position[1]"])  # auto: unset stamps, so receive time
    np.testing.assert_array_equal(t, (START_NS + np.arange(5) * 10**8) / 1e9)
    np.testing.assert_array_equal(got["position[1]"], 10.0 * np.arange(5))
    fails(BagError, r"'position' .* is a variable-length sequence; pick one element, e.g. position\[0\]",
          read_fields, path, "/joint_states", ["position"])
    fails(BagError, r"message 0 of /joint_states is too short for field 'effort\[0\]'",
          read_fields, path, "/joint_states", ["effort[0]"])
