"""`coco-operator convert`: turn Coco's JSON definitions into Kubernetes manifests.

Input is what Coco's docs send with curl: the body of `PUT /connector/<id>` (a connector) and of
`POST /datasource/` (a datasource), one JSON object per input, a JSON array of them, or several objects
concatenated. Output is YAML for `kubectl apply -f -`: a `Connector`, and per datasource a `Secret` holding the token
plus a `Datasource` that references it. Every field that is not carried over is reported on stderr with the reason;
the produced specs are validated with the API models (which check what the CRDs' CEL rules check), so nothing the
API server would refuse is printed.

    read.py    inputs -> JSON objects, and what kind each is
    coco.py    the conversion (pure: objects in, manifests and findings out)
    fields.py  fields the models know, and validation errors as messages with a fix
    report.py  the result and how it is printed
    cli.py     the subcommand (argparse); imports the rest only when it runs
"""
