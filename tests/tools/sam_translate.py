"""Print template.yaml as SAM's translator expands it (run by .venv-sam's python, which has samtranslator).

Usage: sam_translate.py TEMPLATE PARAMETERS_JSON. CodeUri/ContentUri are replaced by S3 URIs (what
`sam package` would do); the managed policies SAM may attach are named, not looked up in IAM.
"""

import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

MANAGED = ("AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", "AWSLambdaDynamoDBExecutionRole",
           "AWSLambdaSQSQueueExecutionRole", "AWSLambdaVPCAccessExecutionRole")


class PolicyLoader:
    def load(self):
        return {name: f"arn:aws:iam::aws:policy/{name}" for name in MANAGED}


template = yaml_parse(open(sys.argv[1]).read())
for resource in template["Resources"].values():
    props = resource.get("Properties", {})
    for key in ("CodeUri", "ContentUri"):
        if key in props:
            props[key] = "s3://bucket/key"
print(json.dumps(transform(template, json.loads(sys.argv[2]), PolicyLoader())))
