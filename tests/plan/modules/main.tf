# An ALB built with terraform-aws-modules/alb v9.17.0 (../shared/terraform/modules/alb), as teams
# write it: the module's own security group, an HTTP listener forwarding to target group "app"
# (name_prefix, instance targets), root attachments through the module's output, an instance rule
# from the ALB's group. Each test case changes it through one variable (see cases.py, MODULE_CASE).
# __MODULES__ is ../shared/terraform/modules, written in when the tests copy this file.

terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}

variable "endpoint" { type = string }
variable "listener_port" {
  type    = number
  default = 80
}
variable "app_port" {
  type    = number
  default = 3000
}
variable "instance_port" {
  description = "the port the instances' group admits from the ALB's group"
  type        = number
  default     = 3000
}
variable "health_path" {
  type    = string
  default = "/api/health"
}
variable "api_group" {
  description = "a second target group \"api\" through the module, a /api/* rule to it and its attachments"
  type        = bool
  default     = false
}
variable "api_port" {
  type    = number
  default = 3000
}
variable "forward_to" {
  description = "the target group key the listener forwards to"
  type        = string
  default     = "app"
}
variable "extra_alb_sg" {
  description = "a second security group on the ALB (beside the module's own), which the instances admit on 3000"
  type        = bool
  default     = false
}
variable "instance_rule" {
  description = "whether the instances' group admits the ALB's group at all"
  type        = bool
  default     = true
}
variable "extra_tags" {
  type    = map(string)
  default = {}
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  endpoints {
    ec2   = var.endpoint
    elbv2 = var.endpoint
    sts   = var.endpoint
    iam   = var.endpoint
  }
}

locals {
  tags = { Environment = "prod" }
}

resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
  tags       = local.tags
}

resource "aws_subnet" "a" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.0.1.0/24"
  availability_zone = "us-east-1a"
}

resource "aws_subnet" "b" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.0.2.0/24"
  availability_zone = "us-east-1b"
}

module "alb" {
  source = "__MODULES__/alb"

  name                       = "web-prod-alb"
  vpc_id                     = aws_vpc.main.id
  subnets                    = [aws_subnet.a.id, aws_subnet.b.id]
  enable_deletion_protection = false
  security_groups            = var.extra_alb_sg ? [aws_security_group.alb_extra[0].id] : []

  security_group_ingress_rules = {
    all_http = { from_port = 80, to_port = 80, ip_protocol = "tcp", cidr_ipv4 = "0.0.0.0/0" }
  }
  security_group_egress_rules = {
    all = { ip_protocol = "-1", cidr_ipv4 = "10.0.0.0/16" }
  }

  listeners = {
    http = {
      port     = var.listener_port
      protocol = "HTTP"
      forward  = { target_group_key = var.forward_to }
      rules = var.api_group ? {
        api = {
          priority   = 10
          actions    = [{ type = "forward", target_group_key = "api" }]
          conditions = [{ path_pattern = { values = ["/api/*"] } }]
        }
      } : {}
    }
  }

  target_groups = merge({
    app = {
      name_prefix       = "app-"
      protocol          = "HTTP"
      port              = var.app_port
      target_type       = "instance"
      create_attachment = false
      health_check = {
        enabled = true
        path    = var.health_path
        matcher = "200"
      }
      tags = var.extra_tags
    }
    }, var.api_group ? {
    api = {
      name_prefix       = "api-"
      protocol          = "HTTP"
      port              = var.api_port
      target_type       = "instance"
      create_attachment = false
      health_check      = { enabled = true, path = "/api/health", matcher = "200" }
    }
  } : {})

  tags = local.tags
}

resource "aws_security_group" "app" {
  name   = "web-prod-app"
  vpc_id = aws_vpc.main.id
  tags   = merge(local.tags, { Name = "web-prod-app" })
}

resource "aws_security_group" "alb_extra" {
  count  = var.extra_alb_sg ? 1 : 0
  name   = "web-prod-alb-extra"
  vpc_id = aws_vpc.main.id
  tags   = merge(local.tags, { Name = "web-prod-alb-extra" })
}

resource "aws_vpc_security_group_ingress_rule" "extra_to_app" {
  count                        = var.extra_alb_sg ? 1 : 0
  security_group_id            = aws_security_group.app.id
  ip_protocol                  = "tcp"
  from_port                    = 3000
  to_port                      = 3000
  referenced_security_group_id = aws_security_group.alb_extra[0].id
}

resource "aws_vpc_security_group_ingress_rule" "alb_to_app" {
  count                        = var.instance_rule ? 1 : 0
  security_group_id            = aws_security_group.app.id
  ip_protocol                  = "tcp"
  from_port                    = var.instance_port
  to_port                      = var.instance_port
  referenced_security_group_id = module.alb.security_group_id
}

resource "aws_instance" "web" {
  count                  = 2
  ami                    = "ami-12c6146b"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.a.id
  vpc_security_group_ids = [aws_security_group.app.id]
  tags                   = merge(local.tags, { Name = "web-prod-${count.index + 1}", Role = "web" })
}

resource "aws_lb_target_group_attachment" "web" {
  count            = 2
  target_group_arn = module.alb.target_groups["app"].arn
  target_id        = aws_instance.web[count.index].id
  port             = var.app_port
}

resource "aws_lb_target_group_attachment" "api" {
  count            = var.api_group ? 2 : 0
  target_group_arn = module.alb.target_groups["api"].arn
  target_id        = aws_instance.web[count.index].id
  port             = var.api_port
}
