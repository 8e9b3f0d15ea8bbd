"""The benchmark report (bench/report.py) in three steps, each a module:

    raw.py      parse: the raw outputs of bench/run.sh, as read (frozen records)
    compute.py  figures per run, the ceiling ratios, the soak summary; targets.py: pass/fail
    markdown.py, plots.py, write.py   render: the .md, the .png, the .json and the README block

summary.py reads the one summary line of bench/load.lua (shared with Tests/Faults/load.py).
"""
