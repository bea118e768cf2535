# An Auto Scaling group built with terraform-aws-modules/autoscaling v8.3.1 behind an ALB built with
# terraform-aws-modules/alb v9.17.0 (both from ../shared/terraform/modules), registered into the ALB
# module's target group "app" by a root aws_autoscaling_attachment: the module's own
# traffic_source_attachments are the other way, which moto cannot apply (it has no AttachTrafficSources),
# so a case only plans one.
# Each test case changes it through one variable (see cases.py, ASG_CASE).
# __MODULES__ is ../shared/terraform/modules, written in when the tests copy this file.

terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}

variable "endpoint" { type = string }
variable "app_port" {
  type    = number
  default = 3000
}
variable "health_check_type" {
  type    = string
  default = "EC2"
}
variable "api_group" {
  description = "a second target group \"api\" through the module, on api_port"
  type        = bool
  default     = false
}
variable "api_port" {
  type    = number
  default = 3000
}
variable "attach_to" {
  description = "the target group key the Auto Scaling group registers its instances in"
  type        = string
  default     = "app"
}
variable "traffic_source" {
  description = "a target group key the module's own traffic_source_attachments register in too (planned only)"
  type        = string
  default     = ""
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  endpoints {
    autoscaling = var.endpoint
    ec2         = var.endpoint
    elbv2       = var.endpoint
    sts         = var.endpoint
    iam         = var.endpoint
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

  security_group_ingress_rules = {
    all_http = { from_port = 80, to_port = 80, ip_protocol = "tcp", cidr_ipv4 = "0.0.0.0/0" }
  }
  security_group_egress_rules = {
    all = { ip_protocol = "-1", cidr_ipv4 = "10.0.0.0/16" }
  }

  listeners = {
    http = {
      port     = 80
      protocol = "HTTP"
      forward  = { target_group_key = "app" }
    }
  }

  target_groups = merge({
    app = {
      name_prefix       = "app-"
      protocol          = "HTTP"
      port              = var.app_port
      target_type       = "instance"
      create_attachment = false
      health_check      = { enabled = true, path = "/api/health", matcher = "200" }
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

resource "aws_vpc_security_group_ingress_rule" "alb_to_app" {
  security_group_id            = aws_security_group.app.id
  ip_protocol                  = "tcp"
  from_port                    = 3000
  to_port                      = 3000
  referenced_security_group_id = module.alb.security_group_id
}

module "asg" {
  source = "__MODULES__/autoscaling"

  name                      = "web-prod"
  min_size                  = 2
  max_size                  = 2
  desired_capacity          = 2
  wait_for_capacity_timeout = 0
  health_check_type         = var.health_check_type
  vpc_zone_identifier       = [aws_subnet.a.id, aws_subnet.b.id]

  launch_template_name = "web-prod"
  image_id             = "ami-12c6146b"
  instance_type        = "t3.micro"
  security_groups      = [aws_security_group.app.id]

  traffic_source_attachments = var.traffic_source == "" ? {} : {
    extra = {
      traffic_source_identifier = module.alb.target_groups[var.traffic_source].arn
      traffic_source_type       = "elbv2"
    }
  }

  tags = merge(local.tags, { Role = "web" })
}

resource "aws_autoscaling_attachment" "web" {
  autoscaling_group_name = module.asg.autoscaling_group_name
  lb_target_group_arn    = module.alb.target_groups[var.attach_to].arn
}
