"""Face helpers shared by the engines, the exchange formats and the Blender side: one definition each
(how far apart the lips are in a frame of ARKit weights, when the eyes blink, how intensity scales a
performance), so a formula never drifts between two copies."""
