# %% [markdown]
# # AgentFlow from Python
#
# A notebook-style walk through the client (each `# %%` is a cell in Jupyter, VS Code or
# PyCharm; `python examples/quickstart.py` runs it all). It needs a coordinator with its HTTP
# API on, e.g. from the repository root:
#
#     agentflow coordinator --http 127.0.0.1:8080 &
#     agentflow worker --name gpu0 & agentflow worker --name gpu1 &
#
# and `pip install ./clients/python` (add `[progress]` for a tqdm bar).
# `AGENTFLOW_URL` and `AGENTFLOW_TOKEN` point it elsewhere.

# %%
import os
import sys
import tempfile
from pathlib import Path

import agentflow_client

HERE = Path(__file__).resolve().parent
WORKFLOWS = Path(os.environ.get("AGENTFLOW_WORKFLOWS", HERE.parents[2] / "workflows"))
client = agentflow_client.Client(os.environ.get("AGENTFLOW_URL", "http://127.0.0.1:8080"))
print("workers:", [(w["name"], w["model"], w["state"]) for w in client.workers()])

# %% [markdown]
# ## Submit a workflow and wait for it
# A path, YAML text or a dict; budget and deadline override the workflow's.

# %%
job = client.submit(WORKFLOWS / "diamond.yaml", budget_usd=0.05, deadline="5m", planner="seq:2")
final = job.wait(timeout=600, progress=True)
print(job.id, final["state"], final["reason"])
print(f"spent {final['budget']['spentTokens']} tokens, ${final['budget']['spentUSD']:.6f}")
for s in final["subtasks"]:
    print(f"  {s['id']:16} {s['state']:10} {s['model'] or '-':14} attempts={s['attempts']} {s['note']}")

# %% [markdown]
# ## Where the money went: attempts and the ledger

# %%
for a in job.attempts():
    print(f"  {a['id']:40} {a['worker'] or '-':8} {a['state']:10} {a['tokens']:6}/{a['tokenCap']} tokens  {a['detail'][:50]}")
by_role = {}
for line in job.ledger():
    by_role[line["role"]] = by_role.get(line["role"], 0) + line["tokensIn"] + line["tokensOut"]
print("tokens by role:", by_role)

# %% [markdown]
# ## A workflow built in Python, followed live through its events

# %%
workflow = {
    "name": "two-helpers",
    "budget": {"tokens": 20000},
    "deadline": "2m",
    "subtasks": [
        {"id": "double", "prompt": "Write double(x) returning 2*x.",
         "verify": {"python": "from solution import double\nassert double(2) == 4"}},
        {"id": "quadruple", "needs": ["double"], "prompt": "Write quadruple(x) using double.",
         "verify": {"python": "from solution import quadruple\nassert quadruple(2) == 8"}},
    ],
}
live = client.submit(workflow, planner="seq:1")
for event in live.events():
    if event.name == "attempt":
        a = event.data["attempt"]
        print(f"  #{event.id} attempt {a['id']} {a['state']}")
    elif event.name == "job":
        print(f"  #{event.id} job {event.data['state']} {event.data['reason'] or ''}")
    elif event.name == "end":
        print("  end")
print(live.status()["state"])

# %% [markdown]
# ## The outputs, as files

# %%
with tempfile.TemporaryDirectory() as out:
    try:
        for path in job.outputs(out):
            print("  ", Path(path).relative_to(out))
    except agentflow_client.NotFound as e:
        print("this coordinator has no outputs API:", e, file=sys.stderr)

# %% [markdown]
# ## Errors carry the coordinator's words

# %%
try:
    client.submit("name: broken\nsubtasks: []\n")
except agentflow_client.BadRequest as e:
    print("refused:", e.message)
client.close()
