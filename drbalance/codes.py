"""Status and event codes of the simulator (a leaf module: imports nothing of drbalance).

:mod:`drbalance.sim` writes these codes and :mod:`drbalance.metrics` reads them; both import them
from here, so neither package imports the other's internals.
"""

# ------------------------------------------------------------------------------------- statuses
IDLE = 0         #: vacant, state of charge above the low-battery threshold: can serve (counts in ``V``)
LOW = 1          #: vacant, at or below the threshold: waits for a policy's charge move (counts in ``L``)
PICKUP = 2       #: driving empty to a matched passenger
SERVING = 3      #: carrying a passenger
REPOSITION = 4   #: driving empty to another region on a policy's vacant move
TO_CHARGE = 5    #: driving to a charger region on a policy's charge move
QUEUED = 6       #: at the charger region, waiting for a free plug
CHARGING = 7     #: plugged in
STRANDED = 8     #: cannot reach any plug with its remaining energy; out of service for the run

STATUS_NAMES = ("idle", "low_battery", "pickup", "serving", "repositioning", "to_charger", "queued",
                "charging", "stranded")
N_STATUS = len(STATUS_NAMES)

EVENT_NAMES = ("init", "request", "expire", "assign", "pickup", "dropoff", "move", "arrive", "charge_move",
               "queue", "plug_in", "unplug", "stranded", "refused", "redirect")
EVENT_CODES = {name: i for i, name in enumerate(EVENT_NAMES)}
