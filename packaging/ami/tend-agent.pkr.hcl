# Bakes tend-agent into AMIs for Amazon Linux 2023 and Ubuntu 24.04 (x86_64).
#
#   packer init packaging/ami/tend-agent.pkr.hcl
#   packer build \
#     -var agent_rpm=target/generate-rpm/tend-agent-0.1.0-1.x86_64.rpm \
#     -var agent_deb=target/debian/tend-agent_0.1.0-1_amd64.deb \
#     packaging/ami/tend-agent.pkr.hcl
#
# The package is installed and its unit stays enabled, but the image holds no
# host identity: the last step runs `tend-agent reset-identity` (like
# `cloud-init clean`), so each instance registers as itself at first boot,
# from its user data (packaging/cloud-init/user-data.yaml). Until it is
# registered, the unit's ExecCondition skips the start.

packer {
  required_plugins {
    amazon = {
      version = ">= 1.3.0"
      source  = "github.com/hashicorp/amazon"
    }
  }
}

variable "region" {
  type        = string
  default     = "us-east-1"
  description = "Region to build in (and where the AMIs are registered)."
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

variable "agent_rpm" {
  type        = string
  description = "Path of the tend-agent x86_64 .rpm (cargo generate-rpm) for Amazon Linux 2023."
}

variable "agent_deb" {
  type        = string
  description = "Path of the tend-agent amd64 .deb (cargo deb) for Ubuntu 24.04."
}

variable "ami_prefix" {
  type    = string
  default = "tend-agent"
}

locals {
  timestamp = regex_replace(timestamp(), "[- TZ:]", "")
}

source "amazon-ebs" "al2023" {
  region        = var.region
  instance_type = var.instance_type
  ssh_username  = "ec2-user"
  ami_name      = "${var.ami_prefix}-al2023-x86_64-${local.timestamp}"

  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-x86_64"
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  tags = {
    Name      = "${var.ami_prefix}-al2023"
    BaseOS    = "Amazon Linux 2023"
    BuiltWith = "packer"
  }
}

source "amazon-ebs" "ubuntu" {
  region        = var.region
  instance_type = var.instance_type
  ssh_username  = "ubuntu"
  ami_name      = "${var.ami_prefix}-ubuntu-24.04-amd64-${local.timestamp}"

  source_ami_filter {
    filters = {
      name                = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["099720109477"]
    most_recent = true
  }

  tags = {
    Name      = "${var.ami_prefix}-ubuntu-24.04"
    BaseOS    = "Ubuntu 24.04"
    BuiltWith = "packer"
  }
}

build {
  name    = "tend-agent"
  sources = ["source.amazon-ebs.al2023", "source.amazon-ebs.ubuntu"]

  # Let first-boot cloud-init (and its apt/dnf runs) finish before installing.
  provisioner "shell" {
    inline = ["cloud-init status --wait || true"]
  }

  provisioner "file" {
    only        = ["amazon-ebs.al2023"]
    source      = var.agent_rpm
    destination = "/tmp/tend-agent.rpm"
  }

  provisioner "file" {
    only        = ["amazon-ebs.ubuntu"]
    source      = var.agent_deb
    destination = "/tmp/tend-agent.deb"
  }

  provisioner "shell" {
    only = ["amazon-ebs.al2023"]
    inline = [
      "sudo dnf install -y /tmp/tend-agent.rpm",
    ]
  }

  provisioner "shell" {
    only = ["amazon-ebs.ubuntu"]
    inline = [
      "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q /tmp/tend-agent.deb",
    ]
  }

  # Check the install, then leave no identity, caches or reports behind. The
  # unit stays enabled: it starts at boot once user data has registered.
  provisioner "shell" {
    inline = [
      "set -e",
      "tend-agent --version",
      "systemctl is-enabled tend-agent.service",
      "sudo tend-agent reset-identity",
      "test ! -e /var/lib/tend/identity/node.json",
      "sudo rm -f /tmp/tend-agent.rpm /tmp/tend-agent.deb",
      "sudo cloud-init clean --logs",
    ]
  }
}
