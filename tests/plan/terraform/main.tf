# The estate the plan-gate tests apply against moto, then change through variables: each test case
# is one set of variables (see cases.py), planned against the applied state.

terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}

variable "endpoint" { type = string }
variable "tg_port" {
  type    = number
  default = 80
}
variable "tg_name" {
  type    = string
  default = "web-prod-tg"
}
variable "health_path" {
  type    = string
  default = "/health"
}
variable "health_path_after_apply" {
  description = "make the health-check path a value known only after apply"
  type        = bool
  default     = false
}
variable "alb_to_app" {
  type    = bool
  default = true
}
variable "extra_tags" {
  type    = map(string)
  default = {}
}
variable "api_group" {
  description = "a second target group, served by nginx's /api/ location, and the listener rule that forwards to it"
  type        = bool
  default     = false
}
variable "http_port" {
  description = "the port of the web listener (the ALB's group admits 80 and 8080-8089)"
  type        = number
  default     = 80
}
variable "worker_port" {
  description = "the port the ECS worker's container maps"
  type        = number
  default     = 8080
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
    ecs   = var.endpoint
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

resource "aws_security_group" "alb" {
  name   = "web-prod-alb"
  vpc_id = aws_vpc.main.id
  tags   = merge(local.tags, { Name = "web-prod-alb" })
}

resource "aws_security_group_rule" "alb_http_in" {
  type              = "ingress"
  security_group_id = aws_security_group.alb.id
  protocol          = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_blocks       = ["0.0.0.0/0"]
}

resource "aws_security_group_rule" "alb_worker_in" {
  type              = "ingress"
  security_group_id = aws_security_group.alb.id
  protocol          = "tcp"
  from_port         = 8080
  to_port           = 8089
  cidr_blocks       = ["10.0.0.0/8"]
}

resource "aws_security_group_rule" "alb_out" {
  type              = "egress"
  security_group_id = aws_security_group.alb.id
  protocol          = "-1"
  from_port         = 0
  to_port           = 0
  cidr_blocks       = ["0.0.0.0/0"]
}

resource "aws_security_group" "app" {
  name   = "web-prod-app"
  vpc_id = aws_vpc.main.id
  tags   = merge(local.tags, { Name = "web-prod-app" })
}

resource "aws_security_group_rule" "alb_to_app" {
  count                    = var.alb_to_app ? 1 : 0
  type                     = "ingress"
  security_group_id        = aws_security_group.app.id
  protocol                 = "tcp"
  from_port                = 0
  to_port                  = 65535
  source_security_group_id = aws_security_group.alb.id
}

resource "aws_security_group_rule" "app_out" {
  type              = "egress"
  security_group_id = aws_security_group.app.id
  protocol          = "-1"
  from_port         = 0
  to_port           = 0
  cidr_blocks       = ["0.0.0.0/0"]
}

resource "aws_instance" "web" {
  ami                    = "ami-12c6146b"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.a.id
  vpc_security_group_ids = [aws_security_group.app.id]
  tags                   = merge(local.tags, { Role = "web", Name = "web-prod-1" })
}

resource "aws_lb" "web" {
  name               = "web-prod-alb"
  load_balancer_type = "application"
  security_groups    = [aws_security_group.alb.id]
  subnets            = [aws_subnet.a.id, aws_subnet.b.id]
  tags               = local.tags
}

resource "terraform_data" "token" {
  count = var.health_path_after_apply ? 1 : 0
  input = "health"
}

resource "aws_lb_target_group" "web" {
  name     = var.tg_name
  port     = var.tg_port
  protocol = "HTTP"
  vpc_id   = aws_vpc.main.id
  health_check {
    path    = var.health_path_after_apply ? "/health/${terraform_data.token[0].id}" : var.health_path
    matcher = "200"
  }
  tags = merge(local.tags, var.extra_tags)
}

resource "aws_lb_target_group_attachment" "web" {
  target_group_arn = aws_lb_target_group.web.arn
  target_id        = aws_instance.web.id
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.web.arn
  port              = var.http_port
  protocol          = "HTTP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}

resource "aws_lb_target_group" "api" {
  count    = var.api_group ? 1 : 0
  name     = "api-prod-tg"
  port     = 80
  protocol = "HTTP"
  vpc_id   = aws_vpc.main.id
  health_check {
    path = "/health"
  }
  tags = local.tags
}

resource "aws_lb_target_group_attachment" "api" {
  count            = var.api_group ? 1 : 0
  target_group_arn = aws_lb_target_group.api[0].arn
  target_id        = aws_instance.web.id
}

resource "aws_lb_listener_rule" "api" {
  count        = var.api_group ? 1 : 0
  listener_arn = aws_lb_listener.http.arn
  priority     = 10
  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api[0].arn
  }
  condition {
    path_pattern {
      values = ["/api/*"]
    }
  }
}

resource "aws_lb_target_group" "worker" {
  name        = "worker-prod-tg"
  port        = 8080
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = aws_vpc.main.id
  tags        = local.tags
}

resource "aws_lb_listener" "worker" {
  load_balancer_arn = aws_lb.web.arn
  port              = 8080
  protocol          = "HTTP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.worker.arn
  }
}

resource "aws_ecs_cluster" "main" {
  name = "prod"
}

resource "aws_ecs_task_definition" "worker" {
  family                   = "worker-prod"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  cpu                      = "256"
  memory                   = "512"
  container_definitions = jsonencode([{
    name         = "worker"
    image        = "example/worker:1"
    essential    = true
    stopTimeout  = 120
    portMappings = [{ containerPort = var.worker_port, protocol = "tcp" }]
  }])
}

resource "aws_ecs_service" "worker" {
  name            = "worker"
  cluster         = aws_ecs_cluster.main.id
  task_definition = aws_ecs_task_definition.worker.arn
  desired_count   = 1
  launch_type     = "FARGATE"
  network_configuration {
    subnets         = [aws_subnet.a.id]
    security_groups = [aws_security_group.app.id]
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.worker.arn
    container_name   = "worker"
    container_port   = 8080
  }
  depends_on = [aws_lb_listener.worker]
  tags       = local.tags
}
