"""Physics kernels: meshes, finite elements, electric field, bioheat, thermal damage.

Nothing here reads files (except the packaged catalogs, through their loaders), prints,
or imports the command line or the plotting code.
"""
