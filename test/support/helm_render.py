"""Renders and lints the Helm chart with Helm's own engine (helm-python-sdk, offline) and checks
every rendered manifest with kubernetes-validate. Reads {"chart", "kubeVersions", "cases":
[{"name", "values", "release", "namespace"}], "documents": [...]} as JSON on stdin (documents:
manifests to validate as they are, so a test can show the validator refuses a bad one); writes
one JSON report on stdout.
"""
import json
import sys

import helm_python as helm
import kubernetes_validate
import yaml


def validate(doc, versions):
    problems = []
    for version in versions:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            return "no-schema", []
        except kubernetes_validate.ValidationError as err:
            path = "/".join(str(p) for p in err.path)
            problems.append(f"{version}: {path}: {err.message}")
    return "checked", problems


def render_case(chart, chart_dir, case, versions):
    out = {"name": case["name"]}
    values = case.get("values") or {}
    try:
        rendered = chart.render(values, name=case.get("release", "demo"),
                                namespace=case.get("namespace", "sluice"), is_install=True)
    except helm.HelmError as err:
        out["error"] = {"type": type(err).__name__, "message": str(err)}
        return out
    out["lint"] = helm.lint(chart_dir, values, strict=True, namespace=case.get("namespace", "sluice"))
    manifests = []
    for template, text in sorted(rendered.items()):
        if not template.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            status, problems = validate(doc, versions)
            manifests.append({"template": template, "object": doc, "schema": status, "problems": problems})
    out["manifests"] = manifests
    return out


def main():
    request = json.load(sys.stdin)
    versions = request.get("kubeVersions") or [kubernetes_validate.utils.latest_version()]
    with helm.Chart.load(request["chart"]) as chart:
        report = {
            "helm": helm.helm_sdk_version(),
            "kubeVersions": versions,
            "cases": [render_case(chart, request["chart"], case, versions) for case in request["cases"]],
            "documents": [validate(doc, versions) for doc in request.get("documents", [])],
        }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
