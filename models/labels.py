"""Label maps shared by training, export and serving (the order is the heads' output order)."""

from __future__ import annotations

SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")

# The 20-class taxonomy of twitter-financial-news-topic, in the data set's integer id order.
TOPICS: tuple[str, ...] = (
    "Analyst Update", "Fed | Central Banks", "Company | Product News", "Treasuries | Corporate Debt",
    "Dividend", "Earnings", "Energy | Oil", "Financials", "Currencies", "General News | Opinion",
    "Gold | Metals | Materials", "IPO", "Legal | Regulation", "M&A | Investments", "Macro", "Markets",
    "Politics", "Personnel Change", "Stock Commentary", "Stock Movement",
)

TASKS: dict[str, tuple[str, ...]] = {"topic": TOPICS, "sentiment": SENTIMENTS}
