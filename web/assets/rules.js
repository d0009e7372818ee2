// The S3 Bucket step's rules, checked as the user types. They mirror the
// server's validators (package config: ValidateName, ValidateAccountID,
// ValidateBucket, ValidateBasePath and the KMS key ARN check) word for word,
// so a message reads the same whether it comes from here or from the API;
// web's browser test compares both on a table of values. The server checks
// again and has the last word (unique names, overlapping base paths).
"use strict";

(function () {
  const roleNamePrefix = "s3connector-";
  const maxRoleNameLength = 64;
  const maxNameLength = maxRoleNameLength - roleNamePrefix.length;
  const maxBasePathLength = 512;
  const reservedPrefixes = ["xn--", "sthree-", "amzn-s3-demo-"];
  const reservedSuffixes = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];
  const required = "is required";

  // goQuote is Go's %q for the strings these messages show.
  function goQuote(s) {
    let out = "\"";
    for (const ch of s) {
      const c = ch.codePointAt(0);
      if (ch === "\"" || ch === "\\") out += "\\" + ch;
      else if (ch === "\n") out += "\\n";
      else if (ch === "\t") out += "\\t";
      else if (ch === "\r") out += "\\r";
      else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
      else out += ch;
    }
    return out + "\"";
  }

  // Unicode white space as Go's unicode.IsSpace sees it.
  const spaceRE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
  const isAlnum = (c) => /^[a-z0-9]$/.test(c);
  const utf8Length = (s) => new TextEncoder().encode(s).length;

  function name(v) {
    if (v === "") return required;
    if (!/^[a-z0-9-]+$/.test(v)) return "may contain only lowercase letters, digits and \"-\", got " + goQuote(v);
    if (v.length > maxNameLength) {
      return "must be at most " + maxNameLength + " characters so that the role name " + roleNamePrefix +
        "<name> fits IAM's limit of " + maxRoleNameLength + ", got " + v.length;
    }
    if (v.startsWith("-") || v.endsWith("-")) return "must not start or end with \"-\", got " + goQuote(v);
    return "";
  }

  function accountID(v) {
    if (v === "") return required;
    if (/^[0-9]{12}$/.test(v)) return "";
    let msg = "must be exactly 12 digits, got " + goQuote(v);
    if (/^[0-9]{12}$/.test(v.replace(/[- ]/g, ""))) msg += "; write it without dashes or spaces";
    return msg;
  }

  function bucket(v) {
    const invalid = (reason) => "invalid bucket name " + goQuote(v) + ": " + reason;
    if (v === "") return required;
    if (v.includes("/") || v.startsWith("arn:")) {
      return invalid("give only the bucket name, without \"s3://\", ARN prefix or folder (the folder goes in base_path)");
    }
    if (v.toLowerCase() !== v || spaceRE.test(v)) return invalid("bucket names are lowercase and contain no spaces");
    if (!/^[a-z0-9.-]+$/.test(v)) return invalid("may contain only lowercase letters, digits, \".\" and \"-\"");
    if (v.length < 3 || v.length > 63) return invalid("must be 3 to 63 characters, got " + v.length);
    if (!isAlnum(v[0]) || !isAlnum(v[v.length - 1])) return invalid("must start and end with a letter or digit");
    if (v.includes("..")) return invalid("must not contain \"..\"");
    if (v.includes(".-") || v.includes("-.")) return invalid("must not contain \".-\" or \"-.\"");
    if (/^[0-9]{1,3}(\.[0-9]{1,3}){3}$/.test(v)) return invalid("must not be formatted as an IP address");
    for (const p of reservedPrefixes) {
      if (v.startsWith(p)) return invalid("must not start with " + goQuote(p) + " (reserved by AWS)");
    }
    for (const s of reservedSuffixes) {
      if (v.endsWith(s)) return invalid("must not end with " + goQuote(s) + " (reserved by AWS)");
    }
    return "";
  }

  function region(v, known) {
    if (v === "") return required;
    if (known && known.length > 0 && !known.includes(v)) return "unknown AWS region " + goQuote(v);
    return "";
  }

  function basePath(v) {
    if (v === "") return "";
    if (v.startsWith("/")) return "must not start with \"/\", got " + goQuote(v) + " (S3 keys have no leading slash)";
    if (v.includes("..")) return "must not contain \"..\", got " + goQuote(v);
    if (v === "." || v.startsWith("./") || v.includes("/./")) return "must not contain \".\" as a folder, got " + goQuote(v);
    if (typeof v.isWellFormed === "function" && !v.isWellFormed()) return "must be valid UTF-8";
    if (/[\x00-\x1f\x7f]/.test(v)) return "must not contain control characters, got " + goQuote(v);
    let i = v.search(/[*?]/);
    if (i >= 0) {
      return "must not contain " + goQuote(v[i]) + ", got " + goQuote(v) +
        ": IAM reads \"*\" and \"?\" in a policy's resource and s3:prefix as wildcards, so the generated policy would grant more than the base path";
    }
    i = v.search(/[${}]/);
    if (i >= 0) {
      return "must not contain " + goQuote(v[i]) + ", got " + goQuote(v) +
        ": IAM reads \"${...}\" in a policy as a policy variable, so the generated policy would grant more than the base path";
    }
    const normalized = v.endsWith("/") ? v : v + "/";
    if (utf8Length(normalized) > maxBasePathLength) {
      return "must be at most " + maxBasePathLength + " bytes including the trailing \"/\", got " + utf8Length(normalized);
    }
    return "";
  }

  function kmsKeyARN(v, known) {
    if (v === "") return "";
    const m = /^arn:(aws|aws-cn|aws-us-gov):kms:([a-z0-9-]+):[0-9]{12}:(key\/[A-Za-z0-9-]+|alias\/[A-Za-z0-9/_-]+)$/.exec(v);
    if (!m) {
      return "must be a KMS key ARN such as arn:aws:kms:<region>:111122223333:key/<key-id> or an alias ARN ...:alias/<name>, got " + goQuote(v);
    }
    if (known && known.length > 0 && !known.includes(m[2])) return "unknown AWS region " + goQuote(m[2]) + " in " + goQuote(v);
    return "";
  }

  // Each rule takes the field's value (and the known regions) and returns
  // "" or the problem, keyed by the API's field names.
  globalThis.S3CRules = Object.freeze({
    name: name,
    account_id: accountID,
    bucket: bucket,
    region: region,
    base_path: basePath,
    kms_key_arn: kmsKeyARN,
  });
})();
