"""The routes, one module per resource; a resource with both JSON and console pages is a package
with ``api.py`` (JSON under /api/v1, and the forms that post there) and ``pages.py`` (HTML),
its ``router`` joining the two.

Route modules never import each other (an import-linter contract): what they share lives in
``web.deps`` (dependencies), ``web.schemas`` (models and parameters), ``web.visibility``,
``web.render`` or the console module that owns the logic. The login routes stay in
``web.security`` beside the session dependencies they set.
"""
