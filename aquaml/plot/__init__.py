"""Figures: learning curves over seeds, rliable-style aggregates, tuning studies and rosbag topics.

``aquaml plot curves|aggregate|table|tune|rosbag`` (``aquaml plot -h``); matplotlib only, on
the non-interactive backend.
"""
