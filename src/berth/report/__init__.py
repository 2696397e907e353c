"""Self-contained HTML reports of Berth's decisions (`berth simulate --report`, `berth explain
-o html`): one page, inline CSS, JavaScript and SVG, nothing fetched when it is opened."""
