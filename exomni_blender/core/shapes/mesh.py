"""Mesh topology for shape making: edges, boundary loops, graph distances, nearest neighbours.

Pure numpy (Blender's own Python has no scipy): a mesh is vertex positions [n, 3] plus faces as
flat loop indices with per-face starts and sizes, as Blender stores them (`foreach_get`).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np


@dataclass
class Mesh:
    points: np.ndarray      # [n, 3] float64
    loops: np.ndarray       # vertex index of every face corner, face after face
    starts: np.ndarray      # first corner of each face
    sizes: np.ndarray       # corners of each face

    @classmethod
    def from_faces(cls, points, faces) -> "Mesh":
        sizes = np.array([len(f) for f in faces], np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        loops = np.fromiter((v for f in faces for v in f), np.int64, count=int(sizes.sum()))
        return cls(np.asarray(points, float), loops, starts, sizes)

    def __post_init__(self):
        self.points = np.asarray(self.points, float)
        self.loops = np.asarray(self.loops, np.int64)
        self.starts = np.asarray(self.starts, np.int64)
        self.sizes = np.asarray(self.sizes, np.int64)
        # Vertices split at UV seams (as glTF stores them) are one vertex to `components` and, when
        # asked, to `neighbours`; boundaries keep them apart, as closed lips may touch.
        size = float(np.ptp(self.points, axis=0).max()) if len(self.points) else 1.0
        q = np.round(self.points / max(size * 1e-6, 1e-12)).astype(np.int64)
        _, first, inverse = np.unique(q, axis=0, return_index=True, return_inverse=True)
        self.weld = first[inverse.ravel()]
        self.welded_loops = self.weld[self.loops]

    def directed_edges(self, welded: bool = False) -> np.ndarray:
        """Every face side as (from, to), in winding order: [corners, 2]."""
        nxt = np.arange(len(self.loops)) + 1
        face_of = np.repeat(np.arange(len(self.starts)), self.sizes)
        last = self.starts + self.sizes - 1
        nxt[last] = self.starts
        loops = self.welded_loops if welded else self.loops
        return np.stack([loops, loops[nxt]], 1), face_of

    def edges(self, welded: bool = False) -> np.ndarray:
        """Unique undirected edges [m, 2] (smaller index first)."""
        d, _ = self.directed_edges(welded)
        e = np.sort(d, axis=1)
        e = e[e[:, 0] != e[:, 1]]
        return np.unique(e, axis=0)

    def boundary_loops(self) -> list:
        """Closed chains of edges used by one face only (holes: eyes, mouth, neck), longest first."""
        d, _ = self.directed_edges()
        e = np.sort(d, axis=1)
        uniq, counts = np.unique(e, axis=0, return_counts=True)
        border = {tuple(x) for x in uniq[counts == 1]}
        nxt = {}
        for a, b in d:
            if (min(a, b), max(a, b)) in border:
                nxt.setdefault(int(a), []).append(int(b))
        loops, seen = [], set()
        for start in list(nxt):
            if start in seen:
                continue
            chain, v = [], start
            while v not in seen and v in nxt:
                seen.add(v)
                chain.append(v)
                v = nxt[v][0]
            if len(chain) >= 3 and v == start:
                loops.append(np.array(chain))
        return sorted(loops, key=len, reverse=True)

    def neighbours(self, keep_apart=()):
        """CSR adjacency (offsets, neighbour ids, edge lengths); vertices split at seams are joined
        by zero-length edges, except those in `keep_apart` (the two edges of a closed lip slit)."""
        e = self.edges()
        apart = np.zeros(len(self.points), bool)
        apart[np.asarray(list(keep_apart), np.int64)] = True
        split = np.nonzero((self.weld != np.arange(len(self.points))) & ~apart & ~apart[self.weld])[0]
        e = np.concatenate([e, np.stack([self.weld[split], split], 1)])
        both = np.concatenate([e, e[:, ::-1]])
        order = np.argsort(both[:, 0], kind="stable")
        both = both[order]
        offsets = np.searchsorted(both[:, 0], np.arange(len(self.points) + 1))
        lengths = np.linalg.norm(self.points[both[:, 0]] - self.points[both[:, 1]], axis=1)
        return offsets, both[:, 1], lengths

    def vertex_normals(self) -> np.ndarray:
        p = self.points
        normals = np.zeros_like(p)
        for k in range(3, int(self.sizes.max(initial=3)) + 1):
            sel = self.sizes == k
            if not sel.any():
                continue
            idx = self.starts[sel][:, None] + np.arange(k)[None, :]
            v = self.loops[idx]
            c = p[v]
            n = np.zeros((len(v), 3))
            for i in range(k):  # Newell's normal, area weighted
                n += np.cross(c[:, i], c[:, (i + 1) % k])
            for i in range(k):
                np.add.at(normals, v[:, i], n)
        return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)

    def components(self) -> np.ndarray:
        """A component id per vertex (islands of the mesh)."""
        parent = np.arange(len(self.points))

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x
        for a, b in self.edges(welded=True):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[ra] = rb
        return np.array([find(i) for i in range(len(parent))])[self.weld]


def graph_distance(mesh_neighbours, sources: dict, limit: float) -> tuple:
    """Multi-source shortest paths along edges: (distance, which source label) per vertex, up to
    `limit` (inf and -1 beyond). `sources` maps a label to vertex ids."""
    offsets, nbr, lengths = mesh_neighbours
    n = len(offsets) - 1
    dist = np.full(n, np.inf)
    label = np.full(n, -1)
    heap = []
    for lab, ids in sources.items():
        for v in ids:
            dist[v] = 0.0
            label[v] = lab
            heap.append((0.0, int(v)))
    heapq.heapify(heap)
    while heap:
        d, v = heapq.heappop(heap)
        if d > dist[v] or d > limit:
            continue
        for k in range(offsets[v], offsets[v + 1]):
            w, nd = nbr[k], d + lengths[k]
            if nd < dist[w]:
                dist[w] = nd
                label[w] = label[v]
                heapq.heappush(heap, (nd, int(w)))
    return dist, label


def nearest(queries, points, k: int = 1, chunk: int = 2048) -> tuple:
    """The k nearest `points` to each query (brute force in chunks): (distances, indices) [q, k]."""
    queries = np.asarray(queries, np.float64)
    points = np.asarray(points, np.float64)
    k = min(k, len(points))
    pn = np.einsum("ij,ij->i", points, points)
    dist = np.empty((len(queries), k))
    idx = np.empty((len(queries), k), np.int64)
    for s in range(0, len(queries), chunk):
        q = queries[s:s + chunk]
        d2 = pn[None, :] - 2.0 * q @ points.T + np.einsum("ij,ij->i", q, q)[:, None]
        part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < len(points) else np.tile(np.arange(k), (len(q), 1))
        pd = np.take_along_axis(d2, part, 1)
        order = np.argsort(pd, axis=1)
        idx[s:s + chunk] = np.take_along_axis(part, order, 1)
        dist[s:s + chunk] = np.sqrt(np.maximum(np.take_along_axis(pd, order, 1), 0.0))
    return dist, idx


def edge_stretch(points, deformed, edges, min_fraction: float = 0.25) -> float:
    """The largest ratio of an edge's deformed length to its rest length, or the inverse (1 is
    unchanged), over edges at least `min_fraction` of the median edge (slivers at a lip corner
    stretch by nature, artists' shapes included)."""
    rest = np.linalg.norm(points[edges[:, 0]] - points[edges[:, 1]], axis=1)
    now = np.linalg.norm(deformed[edges[:, 0]] - deformed[edges[:, 1]], axis=1)
    ok = rest > max(1e-9, min_fraction * float(np.median(rest)) if len(rest) else 0.0)
    return float(np.max(np.maximum(now[ok] / rest[ok], rest[ok] / np.maximum(now[ok], 1e-12)), initial=1.0))


def folded_faces(mesh: Mesh, deformed) -> int:
    """Faces whose normal turns more than 90 degrees from rest (a fold or an inside-out flip)."""
    def face_normals(p):
        n = np.zeros((len(mesh.starts), 3))
        for k in range(3, int(mesh.sizes.max(initial=3)) + 1):
            sel = np.nonzero(mesh.sizes == k)[0]
            if not len(sel):
                continue
            v = mesh.loops[mesh.starts[sel][:, None] + np.arange(k)[None, :]]
            c = p[v]
            acc = np.zeros((len(v), 3))
            for i in range(k):
                acc += np.cross(c[:, i], c[:, (i + 1) % k])
            n[sel] = acc
        return n
    a, b = face_normals(mesh.points), face_normals(np.asarray(deformed, float))
    big = np.linalg.norm(a, axis=1) > 1e-14
    return int(np.sum((np.einsum("ij,ij->i", a, b) < 0) & big))
