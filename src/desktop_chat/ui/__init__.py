"""The Qt layer: widgets and the controller adapting core to signals."""
