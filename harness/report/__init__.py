"""The report wing: terminal and Markdown leaderboards, the HTML report and its plots, galleries, compare."""
