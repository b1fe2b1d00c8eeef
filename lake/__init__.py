"""The data lake's contract and how to reach it: a leaf package that imports no other project package.

`contract` names every container, queue and content type; `paths` builds the blob paths of the
data flow (exports, scoring inputs and outputs, rejections, drift; the registry's own layout is
`model/registry/layout.py`); `connection` parses a Functions-style connection (identity or connection string);
`clients` builds the storage SDK clients. `functions`, `model`, `infra` and `devstack` import
it, so adding a container or a path is a change in one place.
"""
